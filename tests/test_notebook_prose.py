"""The notebooks' text sources and their prose: in step with the .ipynb, and no number without a source.

**Sources in step.** Each ``notebooks/NN_name.ipynb`` is paired with ``notebooks/NN_name.py``
(Jupytext, percent format). Contributors edit either; the two must hold the same cells with
the same source. After a hand edit of one side, ``make sync`` updates the other.

**No stale numbers.** Every number in a markdown cell must be one of:

- a number the notebook's outputs print (any text output of a code cell), or its recorded run
  time (``dcs.full_run_min`` in its metadata, which ``make notebook`` writes). A printed
  ``57.1635`` backs ``57.16`` and ``57.2``; a printed fraction ``0.527`` backs ``52.7`` (%); the
  sign is ignored, so ``-2.22`` backs "2.22 points behind";
- listed in an HTML comment in the same cell, which renders as nothing:

  - ``<!-- from 02_sample_reweighting: 247 352 -->``: quoted from another notebook, whose outputs
    (or run time) are then checked for them the same way;
  - ``<!-- derived: 0.72 = 55.60 - 54.87 -->``: arithmetic on printed numbers; every number on
    the right must be printed by this notebook and the result must match to the last digit
    quoted, give or take one unit (the operands are rounded);
  - ``<!-- constants: 2023 2312.07028 (the paper) -->``: from elsewhere and not printed by any
    notebook: the paper's figures, years, hyper-parameters set in code.

Not counted as numbers: section numbers that start a heading (``## 2. Data``), numbers glued
to letters (``L6``, ``bf16``, ``22.7M``, ``5e-5``), and link targets. So a result typed by hand
into the prose fails here as soon as a new run prints something else.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
FIX = "make sync"

# a number not glued to a word: 2,490 / 57.16 / 0.5; a trailing "x" (1.89x) counts as the number
NUMBER = re.compile(r"(?<![\w.,^])(?<!\de-)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?([A-Za-z_]\w*)?(?!\.?\d)")
COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
MARKER = re.compile(r"^\s*(from\s+(?P<source>\d\d_\w+)|derived|constants)\s*:(?P<body>.*)$", re.DOTALL)
LINK_TARGET = re.compile(r"\]\([^)]*\)")
HEADING_NUMBER = re.compile(r"^(#+\s+)\d+(\.\d+)*\.?(?=\s)", re.MULTILINE)


def numbers(text: str, glued: bool = False) -> list[tuple[str, Decimal]]:
    """The numbers in ``text``: (as written, value); with ``glued``, also those with a unit (22.7M, 34s)."""
    found = []
    for match in NUMBER.finditer(text):
        suffix = match.group(3)
        if suffix and suffix != "x" and not glued:
            continue
        digits = match.group(1).replace(",", "") + (match.group(2) or "")
        found.append((match.group(1) + (match.group(2) or ""), Decimal(digits)))
    return found


def read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def printed(name: str) -> set[Decimal]:
    """Every number in the text outputs of ``name``'s code cells, and its recorded run time."""
    nb = read(name)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type == "stream":
                texts.append(output.text)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    texts.append(value if isinstance(value, str) else "".join(value))
    values = {value for _, value in numbers("\n".join(texts), glued=True)}
    run_time = nb.metadata.get("dcs", {}).get("full_run_min")
    if run_time is not None:
        values.add(Decimal(str(run_time)))
    return values


def unit(quoted: Decimal) -> Decimal:
    exponent = quoted.as_tuple().exponent
    return Decimal(1).scaleb(min(exponent, 0))


def backs(value: Decimal, quoted: Decimal) -> bool:
    """Does a printed ``value`` read as ``quoted`` (rounded to its digits, or as a percentage)?"""
    step = unit(quoted)
    for candidate in (abs(value), abs(value) * 100):
        for rounding in (ROUND_HALF_EVEN, ROUND_HALF_UP):
            if candidate.quantize(step, rounding=rounding) == quoted:
                return True
    return False


def is_printed(quoted: Decimal, values: set[Decimal]) -> bool:
    return any(backs(value, quoted) for value in values)


def check_derived(body: str, values: set[Decimal]) -> tuple[set[Decimal], list[str]]:
    """Numbers that ``<!-- derived: R = EXPR; ... -->`` vouches for, and what is wrong with it."""
    vouched, problems = set(), []
    for statement in filter(None, (s.strip() for s in body.split(";"))):
        result, _, expression = statement.partition("=")
        result, expression = result.strip(), expression.strip()
        if not re.fullmatch(r"[-+]?\d+(\.\d+)?", result) or not re.fullmatch(r"[\d.\s+\-*/()^]+", expression):
            problems.append(f"cannot read {statement!r}: write R = arithmetic on printed numbers")
            continue
        for _, operand in numbers(expression):
            if not is_printed(operand, values):
                problems.append(f"{statement!r}: {operand} is not printed by this notebook")
        try:
            # only digits, dots, spaces, brackets and + - * / ^: a plain arithmetic expression
            value = Decimal(repr(eval(expression.replace("^", "**"), {"__builtins__": {}})))  # noqa: S307
        except (SyntaxError, ZeroDivisionError, InvalidOperation) as err:
            problems.append(f"{statement!r}: {err}")
            continue
        quoted = abs(Decimal(result))
        if not any(abs(abs(v) - quoted) <= unit(quoted) * Decimal("1.01") for v in (value, value * 100)):
            problems.append(f"{statement!r}: the expression gives {value}, not {result}")
        vouched.add(quoted)
    return vouched, problems


def unbacked_numbers(name: str) -> list[str]:
    """What is wrong with the numbers in ``name``'s markdown, one line each."""
    values = printed(name)
    problems = []
    for index, cell in enumerate(read(name).cells):
        if cell.cell_type != "markdown":
            continue
        allowed: set[Decimal] = set()
        for comment in COMMENT.findall(cell.source):
            marker = MARKER.match(comment)
            if not marker:
                continue
            body = marker.group("body")
            if marker.group("source"):
                source = marker.group("source")
                if source not in NAMES:
                    problems.append(f"cell {index}: <!-- from {source} -->: no such notebook")
                    continue
                other = printed(source)
                for written, value in numbers(body):
                    if is_printed(value, other):
                        allowed.add(value)
                    else:
                        problems.append(f"cell {index}: {written} is not printed by {source}")
            elif comment.strip().startswith("derived"):
                vouched, wrong = check_derived(body, values)
                allowed |= vouched
                problems += [f"cell {index}: {line}" for line in wrong]
            else:
                allowed |= {value for _, value in numbers(body)}
        prose = HEADING_NUMBER.sub(r"\1", LINK_TARGET.sub("]()", COMMENT.sub(" ", cell.source)))
        for written, value in numbers(prose):
            if value not in allowed and not is_printed(value, values):
                line = next((ln for ln in prose.splitlines() if written in ln), "").strip()
                problems.append(f"cell {index}: {written} is printed nowhere in the notebook: {line[:100]!r}")
    return problems


@pytest.mark.parametrize("name", NAMES)
def test_every_number_in_the_prose_has_a_source(name):
    problems = unbacked_numbers(name)
    assert not problems, (
        f"notebooks/{name}: numbers in the text that no output backs (print them, or mark them as the "
        "docstring of tests/test_notebook_prose.py says):\n  " + "\n  ".join(problems)
    )


def test_the_checker_catches_a_stale_number():
    assert backs(Decimal("57.1635"), Decimal("57.16")) and backs(Decimal("0.527"), Decimal("52.7"))
    assert not backs(Decimal("57.1635"), Decimal("57.17"))
    assert [w for w, _ in numbers("L6-v2, bf16, 22.7M, 5e-5, 1.89x, 2,490 of (-0.93 to +0.57)")] == [
        "1.89",
        "2,490",
        "0.93",
        "0.57",
    ]
    vouched, problems = check_derived("0.72 = 55.60 - 54.87", {Decimal("55.5957"), Decimal("54.8736")})
    assert vouched == {Decimal("0.72")} and not problems
    _, problems = check_derived("0.9 = 55.60 - 54.87", {Decimal("55.60"), Decimal("54.87")})
    assert problems


# ------------------------------------------------------------------ text source and notebook agree


def cells_of(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip("\n")) for cell in nb.cells]


@pytest.mark.parametrize("name", NAMES)
def test_text_source_and_notebook_agree(name):
    import jupytext

    text_path, nb_path = NOTEBOOKS / f"{name}.py", NOTEBOOKS / f"{name}.ipynb"
    assert text_path.is_file(), f"{nb_path.relative_to(ROOT)} has no text source {text_path.name}: run `{FIX}`"
    from_text, from_ipynb = cells_of(jupytext.read(text_path)), cells_of(read(name))
    assert read(name).metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", (
        f"{nb_path.relative_to(ROOT)} is not paired with its .py (jupytext formats ipynb,py:percent)"
    )
    if from_text != from_ipynb:
        differ = [i for i, (a, b) in enumerate(zip(from_text, from_ipynb)) if a != b]
        where = f"cell {differ[0]} differs" if differ else f"{len(from_text)} cells against {len(from_ipynb)}"
        pytest.fail(
            f"{text_path.relative_to(ROOT)} and {nb_path.relative_to(ROOT)} disagree ({where}): "
            f"one was edited and not synced. Run `{FIX}` (it keeps the newer of the two), "
            f"or `make notebook NB={name[:2]}` to run it again."
        )


def test_only_paired_sources_in_notebooks():
    """Every .py in notebooks/ (but conftest.py) is a notebook's text source."""
    sources = {p.stem for p in NOTEBOOKS.glob("*.py")} - {"conftest"}
    assert sources == set(NAMES), f"text sources without a notebook, or the reverse: {sources ^ set(NAMES)}"
