"""Notebooks 00-03: what they share (sizes, run cache), and the pieces they compute; every notebook's Colab link."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from dcs_lib import notebook
from dcs_lib.losses import kd_kl

ROOT = Path(__file__).resolve().parents[1]
COURSE = ["00_setup", "01_kd_basics", "02_sample_reweighting", "03_dcs_end_to_end"]


def read(name):
    return nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)


def docs_setting(name: str) -> str:
    """A setting of docs/conf.py, e.g. REPOSITORY's default ("OWNER/dcs-tutorial")."""
    text = (ROOT / "docs" / "conf.py").read_text()
    match = re.search(rf'^{name} = (?:os\.environ\.get\("\w+", )?"([^"]+)"', text, re.MULTILINE)
    assert match, f"docs/conf.py has no {name}"
    return match.group(1)


@pytest.mark.parametrize("name", [*COURSE, "04_glue_runs", "05_ablations"])
def test_colab_link_and_install_cell(name):
    nb = read(name)
    link = (f"https://colab.research.google.com/github/{docs_setting('REPOSITORY')}/blob/"
            f"{docs_setting('BRANCH')}/notebooks/{name}.ipynb")
    assert link in nb.cells[0].source, f"{name}: the first cell has no Open in Colab link, or another repository"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert 'find_spec("dcs_lib") is None' in first_code.source
    assert f"git+https://github.com/{docs_setting('REPOSITORY')}" in first_code.source


@pytest.mark.parametrize("name", COURSE[1:])
def test_real_data_notebooks_share_sizes_and_run_cache(name):
    source = (ROOT / "notebooks" / f"{name}.py").read_text()
    assert "SIZES = course_sizes(MODE)" in source and "MODE = course_mode()" in source
    assert 'RUN_CACHE = RUNS / "cache", RUNS / "results"' in source


def test_course_modes(monkeypatch):
    for var in ("DCS_SMOKE", "DCS_CLASSROOM"):
        monkeypatch.delenv(var, raising=False)
    assert notebook.course_mode() == "full"
    monkeypatch.setenv("DCS_CLASSROOM", "1")
    assert notebook.course_mode() == "classroom"
    monkeypatch.setenv("DCS_SMOKE", "1")  # CI's switch wins
    assert notebook.course_mode() == "smoke"
    assert all(m["epochs"] >= 2 for m in notebook.COURSE_MODES.values())  # DCS updates its weights at least once
    assert notebook.COURSE_MODES["classroom"]["n_train"] > notebook.COURSE_MODES["smoke"]["n_train"]


def test_cached_run_trains_once_then_loads(tiny, tmp_path, monkeypatch):
    import dcs_lib.methods as methods

    cfg = tiny.__class__(**{**tiny.__dict__, "method": "vanilla", "epochs": 2})
    seen = []
    first = notebook.cached_run(cfg, tmp_path / "results", cache_dir=tmp_path / "cache", on_epoch=seen.append)
    assert not first["cached"] and len(seen) == 2

    def no_training(*args, **kwargs):
        raise AssertionError("cached_run trained a run it had stored")

    monkeypatch.setattr(methods, "run", no_training)
    again = notebook.cached_run(cfg, tmp_path / "results", cache_dir=tmp_path / "cache", on_epoch=seen.append)
    assert again["cached"] and len(seen) == 4 and seen[2:] == seen[:2]
    assert again["final"] == first["final"] and again["epochs"] == first["epochs"]


def test_strip_volatile_drops_widget_outputs():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(w)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "interactive(children=...)",
                                                                  "application/vnd.jupyter.widget-view+json": {}}),
                    nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    nb.cells.append(cell)
    notebook.strip_volatile(nb)
    assert [o.output_type for o in nb.cells[0].outputs] == ["stream"]


def test_widgets_optional(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as if it were not installed
    assert notebook.widgets_or_none() is None
    assert "ipywidgets is not installed" in capsys.readouterr().out


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 5.0])
def test_kd_gradient_formula_of_the_derivation_exercise(T):
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(8, 3, generator=gen) * 3, torch.randn(8, 3, generator=gen) * 3
    z = s.clone().requires_grad_(True)
    kd_kl(z, t, T).sum().backward()  # kd_kl is T^2 * KL
    torch.testing.assert_close(z.grad, T * (F.softmax(s / T, -1) - F.softmax(t / T, -1)))


def test_loop_on_the_page_is_the_tested_example(monkeypatch):
    """Notebook 03 prints examples/dcs_minimal.py's train(), which tests/test_minimal_example.py holds equal to dcs_lib."""
    monkeypatch.syspath_prepend(ROOT / "examples")  # for this test only: examples/ holds no package of the suite's
    import dcs_minimal

    printed = "".join(o.get("text", "") for c in read("03_dcs_end_to_end").cells if c.cell_type == "code"
                      for o in c.outputs if o.output_type == "stream")
    assert inspect.getsource(dcs_minimal.train).strip() in printed, "notebook 03 shows a stale copy of the loop"


def test_make_notebook_runs_the_full_mode_whatever_the_environment(tmp_path, monkeypatch):
    """The time ``execute`` records is the full mode's, so a smoke or classroom switch left set must not leak in."""
    import nbformat

    from dcs_lib.notebook import execute, full_run_minutes

    path = tmp_path / "mode.ipynb"
    cell = nbformat.v4.new_code_cell("from dcs_lib.notebook import course_mode\nprint(course_mode())")
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    monkeypatch.setenv("DCS_SMOKE", "1")
    monkeypatch.setenv("DCS_CLASSROOM", "1")
    minutes = execute(path)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0]["text"].strip() == "full"
    assert full_run_minutes(nb) == round(minutes, 1)
