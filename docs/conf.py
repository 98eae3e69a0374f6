"""The course as a website: Sphinx + myst-nb + sphinx-book-theme, built by `make site`.

Sources are the project's own files, read in place: README.md is the home page and the executed
notebooks (notebooks/NN_*.ipynb) follow in order. Notebooks are never executed here; their
committed outputs are shown. While reading, :func:`adapt` changes what the site shows, never the
files: each notebook page starts with "Open in Colab" and "Download notebook" links, the live
widget explorer (which needs a kernel) is replaced by a note pointing at the static figure after
it, and `# NBVAL_...` test markers are dropped from code. Math is typeset by a MathJax copy served
with the site (sphinx-mathjax-offline), so the built site needs no network.

Build: sphinx-build -c docs . build/site (the project root is the source folder).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The repository's public address on GitHub, "owner/name": the one value the Colab and source
# links depend on. GitHub Actions sets GITHUB_REPOSITORY; elsewhere set it, or edit the default.
REPOSITORY = os.environ.get("GITHUB_REPOSITORY", "OWNER/dcs-tutorial")
BRANCH = "main"

NOTEBOOKS = sorted(p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"))

project = "DCS tutorial"
author = "dcs-tutorial contributors"
copyright = "dcs-tutorial contributors"
root_doc = "README"
include_patterns = ["README.md", "notebooks/[0-9][0-9]_*.ipynb"]  # the .py Jupytext twins stay out
exclude_patterns = [".venv", "build", "runs", "data", "**/.ipynb_checkpoints"]

extensions = ["myst_nb", "sphinx_copybutton", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # committed outputs only
nb_merge_streams = True
copybutton_exclude = ".linenos, .gp, .go"

html_theme = "sphinx_book_theme"
html_title = "Dynamic Corrective Self-Distillation: a tutorial"
html_copy_source = True
html_theme_options = {
    "repository_url": f"https://github.com/{REPOSITORY}",
    "repository_branch": BRANCH,
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}
html_context = {"default_mode": "light"}  # unset, the theme logs a console error on a first visit
html_favicon = "favicon.svg"


def colab_url(docname: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{docname}.ipynb"


WIDGET_NOTE = (
    "*Here the notebook shows a live explorer (sliders for λ, the step rule, the clip range and "
    "accumulation). It needs a running kernel: open the notebook in Colab or Jupyter to use it. "
    "The static figure below shows four of its settings.*"
)


LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def link_to_repository(text: str, folder: str) -> str:
    """Relative links to files that are not pages of the site point at the repository instead.

    Images stay relative: Sphinx copies them into the site.
    """

    def rewrite(match: re.Match) -> str:
        target = match.group(2)
        if match.group(1).startswith("!") or re.match(r"^([a-z]+:|#|/)", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = (ROOT / folder / path).resolve()
        if not resolved.exists() or resolved.with_suffix("").relative_to(ROOT).as_posix() in [root_doc, *NOTEBOOKS]:
            return match.group(0)  # a page of the site, or missing (then the site check reports it)
        kind = "tree" if resolved.is_dir() else "blob"
        url = f"https://github.com/{REPOSITORY}/{kind}/{BRANCH}/{resolved.relative_to(ROOT).as_posix()}"
        return match.group(1) + url + ("#" + anchor if anchor else "") + match.group(3)

    return LINK.sub(rewrite, text)


def adapt_notebook(text: str, docname: str) -> str:
    nb = json.loads(text)
    name = Path(docname).name
    links = f"[Open in Colab]({colab_url(docname)}) · {{download}}`Download notebook <{name}.ipynb>`"
    cell = {"cell_type": "markdown", "metadata": {}, "source": links}
    if (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5):
        cell["id"] = "site-links"
    nb["cells"].insert(0, cell)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = link_to_repository("".join(cell["source"]), "notebooks")
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        cell["source"] = re.sub(r"(?m)^# NBVAL_\w+\n", "", source)
        for i, output in enumerate(cell.get("outputs", [])):
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                note = {"text/markdown": WIDGET_NOTE}
                cell["outputs"][i] = {"output_type": "display_data", "metadata": {}, "data": note}
    nb["metadata"].pop("widgets", None)
    return json.dumps(nb)


def adapt_readme(text: str) -> str:
    # The navigation: the notebooks in order, after the home page.
    toctree = "\n".join(["", "```{toctree}", ":hidden:", ":caption: Notebooks", "", *NOTEBOOKS, "```", ""])
    return link_to_repository(text, ".") + toctree


def adapt(app, docname: str, source: list[str]) -> None:
    if docname == root_doc:
        source[0] = adapt_readme(source[0])
    elif docname in NOTEBOOKS:
        source[0] = adapt_notebook(source[0], docname)


def write_index(app, exception) -> None:
    if exception is None and app.builder.name == "html":
        Path(app.outdir, "index.html").write_text(
            '<!DOCTYPE html><meta charset="utf-8"><title>DCS tutorial</title>'
            # its own icon, or the browser asks for /favicon.ico, which the site does not have
            '<link rel="icon" href="_static/favicon.svg">'
            '<meta http-equiv="refresh" content="0; url=README.html"><a href="README.html">DCS tutorial</a>\n'
        )


def setup(app):
    app.connect("source-read", adapt)
    app.connect("build-finished", write_index)
