"""The study "When does DCS help?" (data/results/study/): what its records and report claim.

Its protocol says the runs were planned before the first one, all ran in one block
(device, precision, versions) with the library as of the protocol's commit, and that
the report is what ``python -m dcs_lib report`` computes from the records. These
tests check each claim on the committed files; none trains anything.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dcs_lib import DCSError
from dcs_lib.experiments import read_grid, run_id
from dcs_lib.study import STUDY_FAMILY, STUDY_GRIDS, study_results

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "data" / "results" / "study"
RECORDS = [STUDY / "runs-1.jsonl", STUDY / "runs-2.jsonl"]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def history_or_skip() -> None:
    try:
        shallow = git("rev-parse", "--is-shallow-repository")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if shallow == "true":
        pytest.skip("a shallow clone does not hold the study's history")


def protocol_commit() -> str:
    return git("log", "--diff-filter=A", "--format=%H", "--", str(STUDY / "PROTOCOL.md")).splitlines()[-1]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return study_results(STUDY.parent)[0]


def test_the_study_reader_refuses_a_run_no_grid_plans(records, tmp_path):
    (tmp_path / "study").mkdir()
    for name in STUDY_GRIDS:
        (tmp_path / "study" / name).write_text((STUDY / name).read_text())
    stray = dict(records[0], run_id="0123456789abcdef")
    for i, batch in enumerate(([*records[:3], stray], records[3:5]), start=1):
        (tmp_path / "study" / f"runs-{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in batch))
    with pytest.raises(DCSError, match="plans: 0123456789abcdef"):
        study_results(tmp_path)
    (tmp_path / "study" / "runs-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:3]))
    assert len(study_results(tmp_path)[0]) == 5
    # the same run in both files
    (tmp_path / "study" / "runs-2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[2:5]))
    with pytest.raises(DCSError, match=f"recorded twice: {records[2]['run_id']}"):
        study_results(tmp_path)


def test_the_study_reader_refuses_a_run_of_another_set_up(records, tmp_path):
    """One block, as the protocol fixes it: a run with another transformers version is named, not pooled."""
    (tmp_path / "study").mkdir()
    for name in STUDY_GRIDS:
        (tmp_path / "study" / name).write_text((STUDY / name).read_text())
    other = dict(records[1], versions=dict(records[1]["versions"], transformers="5.17.0"))
    (tmp_path / "study" / "runs-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [records[0], other, *records[2:4]]))
    (tmp_path / "study" / "runs-2.jsonl").write_text("")
    with pytest.raises(DCSError, match=f"{other['run_id']} \\(transformers 5.17.0\\)"):
        study_results(tmp_path)


def test_the_holm_family_names_the_teachers_the_grid_plans():
    """Holm's family matches rows by the teacher's label: a label that drifted from the grid's would leave it empty."""
    from dcs_lib.report import teacher_label

    configs = read_grid(STUDY / "grid.toml")
    labels = {teacher_label({"config": dataclasses.asdict(c), "method": c.method, "seed": c.seed}) for c in configs} - {""}
    assert labels == {teacher for *_, teacher in STUDY_FAMILY}


def test_the_addendum_grid_pairs_with_the_protocols_vanilla_runs():
    """Same [base] and cell as the protocol's SST-2 4,000 runs: only the teacher differs."""

    def cell(config, **teacher):
        shared = dataclasses.replace(config, seed=0, method="vanilla", teacher_epochs=0, **teacher)
        return json.dumps(dataclasses.asdict(shared), sort_keys=True)

    addendum = read_grid(STUDY / "grid-mpnet.toml")
    assert {c.seed for c in addendum} == set(range(1, 11)) and {c.method for c in addendum} == {"kd", "dcs"}
    vanilla = [c for c in read_grid(STUDY / "grid.toml") if c.method == "vanilla" and c.n_train == 4000]
    assert {cell(c, teacher_model=None, teacher_seed=None) for c in addendum} == {cell(c) for c in vanilla}


def test_the_protocol_was_committed_before_the_first_record_and_only_gained_addenda():
    history_or_skip()
    first = protocol_commit()
    for path in RECORDS:
        # every commit that gave a results file a record comes after the protocol's
        for commit in git("log", "--format=%H", "-S", '"run_id"', "--", str(path)).splitlines():
            ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", first, commit], cwd=ROOT, check=False)
            after = ancestor.returncode == 0
            assert after and commit != first, f"{commit} gave {path.name} records before the protocol's commit"
    then = git("show", f"{first}:data/results/study/PROTOCOL.md")
    now = (STUDY / "PROTOCOL.md").read_text()
    head = then.split("## Addenda")[0]
    assert now.startswith(head), "the protocol changed above its Addenda after the first run"


def test_every_record_is_a_planned_run_of_one_block(records):
    planned = {run_id(c) for name in STUDY_GRIDS for c in read_grid(STUDY / name)}
    ids = [r["run_id"] for r in records]
    assert len(ids) == len(set(ids)), "a run is recorded twice"
    assert set(ids) <= planned, "a record is not in the study's grid"
    blocks = {
        (r["device"], r["precision"], r["world_size"], r["versions"]["torch"], r["versions"]["transformers"],
         r["versions"]["datasets"], r["versions"]["commit"])
        for r in records
    }
    assert len(blocks) <= 1, f"the study's records span more than one block: {sorted(blocks)}"
    for device, precision, world_size, torch, *_ in blocks:
        assert (device, precision, world_size, torch) == ("cpu", "bfloat16", 1, "2.13.0+cpu")
    history_or_skip()
    assert all(r["versions"]["commit"] == protocol_commit() for r in records), "a run used other code"


def test_records_hold_no_machine_path(records):
    assert all(r["config"]["data_dir"] is None for r in records)


def test_the_committed_report_is_the_report_of_the_committed_records(tmp_path):
    """`make study-report` (``python -m dcs_lib report --study``) after adding records; a stale report fails here."""
    done = subprocess.run(
        [sys.executable, "-m", "dcs_lib", "report", "--study", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Holm's family (the protocol's primary comparisons):" in done.stdout
    assert all(str(member) in done.stdout for member in STUDY_FAMILY)
    for name in ("summary.md", "paired.csv", "teachers.csv"):
        assert (STUDY / "report" / name).read_text() == (tmp_path / name).read_text(), (
            f"data/results/study/report/{name} is not the report of the committed records: run `make study-report`"
        )


README_TEACHERS = {  # the README table's words for the report's teacher labels
    "own seed, 2 epochs (paper-reading)": "own seed (2 ep)",
    "peer, 5 epochs": "peer (5 ep)",
    "out-of-fold, 2 folds of 5 epochs": "out-of-fold (2 folds, 5 ep)",
}
README_CELLS = {"SST-2, 4,000": ("sst2", 4000), "MRPC, full": ("mrpc", None)}


def test_the_readme_table_is_the_committed_report():
    """Every number in the README's study table is the report's (stale Holm p-values fail here as runs arrive)."""
    import pandas as pd

    paired = pd.read_csv(STUDY / "report" / "paired.csv")
    paired = paired[paired["score"] == "final"]
    teachers = pd.read_csv(STUDY / "report" / "teachers.csv")
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if any(line.startswith(f"| {cell} |") for cell in README_CELLS)]
    assert rows, "the README's study table is missing"

    def num(text):
        return float(text.replace("−", "-"))

    def rounded(value, places, report_value):  # the report's value to ``places`` (it keeps 6 places)
        return abs(value - report_value) <= 0.5 * 10**-places + 1e-6

    for line in rows:
        cell, teacher, scores, *diffs = [part.strip() for part in line.strip("|").split("|")]
        task, n_train = README_CELLS[cell]
        label = README_TEACHERS[teacher]

        def same_cell(frame):
            size = frame["n_train"].isna() if n_train is None else frame["n_train"] == n_train
            return frame[(frame["task"] == task) & size & (frame["teacher"] == label)]

        dev, train = map(num, scores.split(" / "))
        diagnostics = same_cell(teachers).iloc[0]
        assert rounded(dev, 2, diagnostics.teacher_dev) and rounded(train, 2, diagnostics.teacher_train), line
        for comparison, text in zip(("kd - vanilla", "dcs - vanilla", "dcs - kd"), diffs):
            row = same_cell(paired[paired["comparison"] == comparison]).iloc[0]
            assert row.n == 10, f"{line}: a cell in the README's table must be complete"
            got = re.fullmatch(r"(\S+) \[(\S+), (\S+)\], p = (\S+?)(?:, Holm (\S+))?", text)
            assert got, f"README: cannot read {text!r}"
            mean, low, high, p = map(num, got.groups()[:4])
            quoted = ((mean, 2, row.mean_diff), (low, 2, row.ci_low), (high, 2, row.ci_high), (p, 3, row.p_perm))
            assert all(rounded(*each) for each in quoted), f"{text}: the report has {row.to_dict()}"
            holm = got.group(5)
            assert (holm is None) == pd.isna(row.p_holm), f"{text}: Holm's p where the protocol tests, nowhere else"
            if holm is not None:
                assert rounded(num(holm), 2, row.p_holm), f"{text}: Holm p is {row.p_holm} in the report"
