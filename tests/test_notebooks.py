"""The course notebooks: committed clean, with outputs, and in step with the library.

These tests read the .ipynb files; they do not run them. Running them is nbval's job
(``DCS_SMOKE=1 pytest --nbval-lax notebooks/``), which also compares the cells marked
``# NBVAL_CHECK_OUTPUT``. Here we check what a reader sees on GitHub: every code cell
executed in order in one fresh kernel, no errors, no volatile metadata, outputs from a
full run rather than the smoke mode; and that the functions the notebooks write out
by hand agree with the library's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "00_setup",
    "01_kd_basics",
    "02_sample_reweighting",
    "03_dcs_end_to_end",
    "04_glue_runs",
    "05_ablations",
]


def read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_all_notebooks_present():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_executed_in_order_without_errors(name):
    nb = read(name)
    nbformat.validate(nb)
    cells = code_cells(nb)
    counts = [cell.execution_count for cell in cells]
    assert None not in counts, f"{name}: code cells {[i for i, c in enumerate(counts) if c is None]} were not run"
    assert counts == list(range(1, len(cells) + 1)), f"{name}: not run top to bottom in one fresh kernel: {counts}"
    assert sum(len(cell.outputs) for cell in cells) >= len(cells) // 2, f"{name}: most code cells have no output"
    for i, cell in enumerate(cells):
        for output in cell.outputs:
            assert output.output_type != "error", f"{name}: code cell {i} raised {output.get('ename')}"
            assert not (output.output_type == "stream" and output.name == "stderr" and "Traceback" in output.text)


@pytest.mark.parametrize("name", EXPECTED)
def test_no_volatile_metadata(name):
    nb = read(name)
    assert "widgets" not in nb.metadata, f"{name}: widget state is committed"
    for i, cell in enumerate(nb.cells):
        assert "execution" not in cell.metadata, f"{name}: cell {i} keeps execution timings"
        assert "ExecuteTime" not in cell.metadata, f"{name}: cell {i} keeps execution timings"


def quoted_run_times(text: str, name: str) -> list[float]:
    """Run times that a table row for ``name`` quotes: ``| `name` | ... | 24.9 min |``."""
    rows = [line for line in text.splitlines() if line.startswith(f"| `{name}")]
    return [float(m) for row in rows for m in re.findall(r"\| (\d+(?:\.\d+)?) min\b", row)]


@pytest.mark.parametrize("name", EXPECTED)
def test_quoted_run_times_are_the_recorded_ones(name):
    """The header, the course table of notebook 00 and the README quote the time `make notebook` recorded."""
    nb = read(name)
    recorded = nb.metadata.get("dcs", {}).get("full_run_min")
    assert recorded is not None, f"{name}: no recorded run time (metadata dcs.full_run_min): run `make notebook NB={name[:2]}`"
    header = re.search(r"Full run: (\d+(?:\.\d+)?) min", nb.cells[0].source)
    assert header, f"{name}: the header does not state the measured run time"
    course = "\n".join(cell.source for cell in read("00_setup").cells if cell.cell_type == "markdown")
    readme = (ROOT / "README.md").read_text()
    quoted = {"header": [float(header.group(1))], "notebook 00's table": quoted_run_times(course, name),
              "README": quoted_run_times(readme, name)}
    for where, times in quoted.items():
        assert times, f"{name}: {where} does not give its run time"
        assert all(t == recorded for t in times), f"{name}: {where} says {times} min, the last full run took {recorded} min"


@pytest.mark.parametrize("name", EXPECTED)
def test_outputs_come_from_a_full_run(name):
    nb = read(name)
    printed = "".join(o.get("text", "") for cell in code_cells(nb) for o in cell.outputs if o.output_type == "stream")
    assert "SMOKE = False" in printed, f"{name}: the committed outputs are not from a full run"
    assert "SMOKE = True" not in printed


@pytest.mark.parametrize("name", EXPECTED)
def test_structure(name):
    """Goals and run time first, one parameters cell, exercises, solutions, paper vs our reading."""
    nb = read(name)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for heading in ("## Parameters", "## Summary", "## Exercises", "## Solutions"):
        assert heading in text, f"{name}: no {heading!r} section"
    shows_table = any("paper_vs_ours()" in cell.source for cell in code_cells(nb))  # dcs_lib.notebook's table
    assert shows_table or ("our reading" in text and "paper" in text), f"{name}: no paper-vs-ours reading"
    params = [cell for cell in code_cells(nb) if 'os.environ.get("DCS_SMOKE")' in cell.source]
    assert len(params) == 1, f"{name}: expected one parameters cell"
    assert "(Written after the full run.)" not in text, f"{name}: a discussion is still a placeholder"


@pytest.mark.parametrize("name", ["01_kd_basics", "02_sample_reweighting", "03_dcs_end_to_end"])
def test_results_files_back_the_numbers(name):
    path = ROOT / "data" / "results" / "notebooks" / f"{name}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert records, f"{path} is empty"
    for record in records:
        assert record["task"] == "sst2" and record["n_train"] == 2000 and record["n_dev"] == 872 and record["epochs"]
        assert record["config"]["n_train"] == 2000 and record["config"]["n_dev"] is None


def defined_in(name: str, function: str):
    """Execute the notebook cell that defines ``function`` and return it."""
    cells = [
        cell.source for cell in code_cells(read(name)) if re.search(rf"^def {function}\(", cell.source, re.MULTILINE)
    ]
    assert len(cells) == 1, f"{name}: expected one cell defining {function}"
    namespace = {}
    # The cell is our own notebook's code, run on purpose: the test is about that very text.
    exec("import math\nimport torch\nimport torch.nn.functional as F\n" + cells[0], namespace)  # noqa: S102
    return namespace[function]


def test_inline_kd_loss_matches_library():
    from dcs_lib.losses import kd_kl

    kd_loss = defined_in("01_kd_basics", "kd_loss")
    gen = torch.Generator().manual_seed(1)
    for classes in (2, 3, 5):
        for temperature in (0.5, 1.0, 2.0, 4.0, 10.0):
            student = torch.randn(32, classes, generator=gen) * 4
            teacher = torch.randn(32, classes, generator=gen) * 4
            torch.testing.assert_close(kd_loss(student, teacher, temperature), kd_kl(student, teacher, temperature))


def test_inline_weight_update_matches_library():
    from dcs_lib.weighting import update_weights

    dcs_update = defined_in("02_sample_reweighting", "dcs_update")
    gen = torch.Generator().manual_seed(2)
    for _ in range(100):
        n = int(torch.randint(1, 300, (1,), generator=gen))
        weights = torch.rand(n, generator=gen) * 5 + 0.05
        disagree = (torch.rand(n, generator=gen) < float(torch.rand(1, generator=gen))).float()
        for step in ("fixed", "adaboost"):
            kwargs = {"lam": float(torch.rand(1, generator=gen)) * 3, "step": step, "clip_min": 0.1, "clip_max": 10.0}
            torch.testing.assert_close(
                dcs_update(weights, disagree, **kwargs),
                update_weights(weights, disagree, **kwargs),
                rtol=1e-5,
                atol=1e-5,
            )


def test_glue_results_come_from_the_committed_grid_and_the_fixed_rule():
    """Notebooks 04 and 05 read these files: check the protocol they claim."""
    import tomllib

    from dcs_lib.experiments import load_results, read_grid, run_id
    from dcs_lib.report import choose_schedule

    results = ROOT / "data" / "results"
    tuning = load_results(results / "tuning" / "runs.jsonl")
    assert len(tuning) == 12 and all(r["config"]["holdout"] == 500 for r in tuning)
    choice = choose_schedule(tuning)
    base = tomllib.loads((results / "glue" / "grid.toml").read_text())["base"]
    assert (base["lr"], base["epochs"]) == (choice["lr"], choice["epochs"])

    records = load_results(results / "glue" / "runs.jsonl")
    ids = [r["run_id"] for r in records]
    assert len(ids) == len(set(ids)), "a run is in the results file twice"
    assert set(ids) <= {run_id(c) for c in read_grid(results / "glue" / "grid.toml")}
    for r in records:
        assert r["config"]["lr"] == base["lr"] and len(r["epochs"]) == base["epochs"]
        assert r["config"]["holdout"] is None and r["config"]["n_dev"] is None  # scored on the full dev set


def test_notebook_data_dir_from_a_relative_path_and_a_missing_one(glue, monkeypatch):
    """Kernels run in notebooks/: a relative $DCS_GLUE_DIR from the project root still finds the data,
    and a wrong one stops the parameters cell with one line, not a traceback."""
    import os

    from dcs_lib.notebook import DataNotFound, glue_dir

    data = glue.resolve()  # before the chdir: the fixture's path may itself be relative to the root
    monkeypatch.chdir(NOTEBOOKS)
    monkeypatch.setenv("DCS_GLUE_DIR", os.path.relpath(data, ROOT))  # relative to the root, not to here
    found = glue_dir()
    assert not Path(found).is_absolute() and (Path(found) / "RTE" / "train.tsv").is_file()
    monkeypatch.setenv("DCS_GLUE_DIR", "no/such/glue")
    with pytest.raises(DataNotFound) as err:
        glue_dir()
    (line,) = err.value._render_traceback_()  # what Jupyter shows instead of a traceback
    assert line.startswith("DataNotFound: DCS_GLUE_DIR=no/such/glue is not a folder")


def test_full_mode_trains_in_float32_on_a_cpu_without_bf16(monkeypatch, capsys):
    """The full mode asks for bf16 autocast; a CPU without AVX512-BF16 or AMX gets float32, and is told so."""
    import torch

    from dcs_lib import train
    from dcs_lib.notebook import COURSE_MODES, course_sizes

    monkeypatch.setattr(train, "pick_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(train, "cpu_supports_bf16", lambda: False)
    assert course_sizes("full") == {**COURSE_MODES["full"], "amp": "off"}
    assert "no bf16 support" in capsys.readouterr().out
    monkeypatch.setattr(train, "cpu_supports_bf16", lambda: True)
    assert course_sizes("full") == COURSE_MODES["full"] and COURSE_MODES["full"]["amp"] == "bf16"
    assert course_sizes("smoke") == COURSE_MODES["smoke"]


def test_the_saved_notebook_records_hold_no_data_folder():
    """The course's raw records name the run, not where the reader keeps glue_data (notebook.shareable)."""
    from dcs_lib.notebook import shareable

    saved = sorted((ROOT / "data" / "results" / "notebooks").glob("*.jsonl"))
    assert saved
    for path in saved:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert record["config"]["data_dir"] is None and "cached" not in record, path.name
    record = {"cached": True, "config": {"data_dir": "../glue_data", "seed": 1}, "final": {}}
    assert shareable(record) == {"config": {"data_dir": None, "seed": 1}, "final": {}}
    assert record["config"]["data_dir"] == "../glue_data"  # the run's own record is left as it was
