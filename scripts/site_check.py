"""Open the built site (`make site`) in headless Chromium and check what a reader would see.

Every page: loads with no console error and no request leaving the local server; every image
has loaded (naturalWidth > 0); every math element is typeset by MathJax without errors; every
internal link resolves (file and #anchor). Every notebook page: an "Open in Colab" link and a
"Download notebook" link that resolves. Saves screenshots of the first page and of notebook 02
(its top, and where the live explorer is replaced by a note and the static figure).

    python scripts/site_check.py [--site build/site] [--out build/site-check]

Needs Chromium and ChromeDriver (Debian: apt-get install chromium chromium-driver) and selenium
(pip install -e ".[site]"). Exit status 1 names every failure.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]

# Runs in the page once it has loaded: waits for MathJax and for every image, then reports.
INSPECT = """
const done = arguments[arguments.length - 1];
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const maths = [...document.querySelectorAll("span.math, div.math")];
  done({
    images: images.map(img => [img.currentSrc || img.src, img.naturalWidth]),
    maths: maths.length,
    untypeset: maths.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.slice(0, 60)),
    mathErrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    links: [...document.querySelectorAll("a[href]")].map(a => [a.getAttribute("href"), a.href, a.textContent.trim()]),
    ids: [...document.querySelectorAll("[id]")].map(e => e.id),
    resources: performance.getEntriesByType("resource").map(e => e.name),
    title: document.title,
  });
})();
"""


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def browser(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    return driver


def pages(site: Path) -> list[str]:
    """Every HTML page, the first page first."""
    found = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts)
    first = "README.html"
    return [first] + [p for p in found if p != first]


def check(site: Path, out: Path) -> list[str]:
    failures: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    server, base = serve(site)
    profile = tempfile.mkdtemp(prefix="site-check-")
    driver = browser(profile)
    ids: dict[str, set[str]] = {}
    links: list[tuple[str, str, str]] = []
    try:
        for page in pages(site):
            start = time.perf_counter()
            driver.get(base + page)
            report = driver.execute_async_script(INSPECT)
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            failures += [f"{page}: console error: {message}" for message in errors]
            failures += [f"{page}: image not loaded: {src}" for src, width in report["images"] if not width]
            failures += [f"{page}: math not typeset: {text!r}" for text in report["untypeset"]]
            if report["mathErrors"]:
                failures.append(f"{page}: {report['mathErrors']} MathJax error(s)")
            outside = [url for url in report["resources"] if not url.startswith(base)]
            failures += [f"{page}: request left the site: {url}" for url in outside]
            ids[page] = set(report["ids"])
            links += [(page, href, absolute) for href, absolute, _ in report["links"]]
            if page.startswith("notebooks/"):
                texts = {text: absolute for _, absolute, text in report["links"]}
                colab = texts.get("Open in Colab", "")
                if not colab.startswith("https://colab.research.google.com/github/") or not colab.endswith(
                    Path(page).with_suffix(".ipynb").as_posix()
                ):
                    failures.append(f"{page}: no 'Open in Colab' link to the notebook (found {colab!r})")
                if not texts.get("Download notebook", "").endswith(Path(page).with_suffix(".ipynb").name):
                    failures.append(f"{page}: no 'Download notebook' link")
            print(
                f"{page}: {len(report['images'])} images, {report['maths']} math, {len(report['links'])} links, "
                f"{len(errors)} console errors, {time.perf_counter() - start:.1f}s"
            )
            if page == "README.html":
                driver.save_screenshot(str(out / "first-page.png"))
            if page.startswith("notebooks/02_"):
                driver.save_screenshot(str(out / "notebook-02.png"))
                # where the live explorer was: the note, then the static figure
                driver.execute_script(
                    "const p = [...document.querySelectorAll('p, em')].find(e => e.textContent.includes('needs a running kernel'));"
                    "if (p) { p.scrollIntoView(); window.scrollBy(0, -70); }"
                )
                driver.save_screenshot(str(out / "notebook-02-explorer.png"))
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)

    for page, href, absolute in links:  # internal links: the file exists, and so does the anchor
        if not absolute.startswith(base):
            continue
        target, fragment = urldefrag(absolute)
        path = unquote(urlparse(target).path).lstrip("/") or "index.html"
        if not (site / path).is_file():
            failures.append(f"{page}: broken link {href!r}")
        elif fragment and path in ids and unquote(fragment) not in ids[path]:
            failures.append(f"{page}: link {href!r}: no #{fragment} on {path}")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site-check")
    args = parser.parse_args(argv)
    if not (args.site / "README.html").is_file():
        print(f"{args.site}/README.html not found: run `make site` first", file=sys.stderr)
        return 2
    failures = check(args.site, args.out)
    for failure in failures:
        print("FAIL", failure)
    failed = {failure.split(":")[0] for failure in failures}
    print(f"screenshots in {args.out}")
    print(f"site-check: {len(pages(args.site)) - len(failed)} passed, {len(failed)} failed")  # pages
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
