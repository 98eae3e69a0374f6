"""The study "When does DCS help?" (``data/results/study``): its plan, its primary comparisons, its records.

``PROTOCOL.md`` there fixes the study before its first run; these constants restate what it
names, and :func:`study_results` reads the records the two study processes wrote, checked
against the grid files. ``python -m dcs_lib report --study`` (``make study-report``) and
notebooks 04 and 05 read the study through it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DCSError

# The study's grid files: the protocol's, then each addendum's (PROTOCOL.md, "Addenda").
STUDY_GRIDS = ("grid.toml", "grid-mpnet.toml")
# Its primary comparisons, Holm's family: each of the protocol's three teachers in each required cell
# (addendum A1's teacher and the stretch cells are secondary).
STUDY_TEACHERS = ("own seed (2 ep)", "peer (5 ep)", "out-of-fold (2 folds, 5 ep)")
STUDY_REQUIRED_CELLS = (("sst2", 4000), ("mrpc", None))
STUDY_FAMILY = tuple((task, n_train, t) for task, n_train in STUDY_REQUIRED_CELLS for t in STUDY_TEACHERS)


def study_results(results: Path):
    """The records of the study "When does DCS help?" so far, checked against its grid files.

    Returns ``(records, grid_configs)``: every record is a run that the protocol's grid or
    an addendum's plans (:data:`STUDY_GRIDS`), none is there twice (the study writes two
    results files, one per process), and all ran in one block: the same device, precision,
    number of processes, library versions and commit, as the protocol requires.
    """
    from collections import Counter

    from .experiments import load_results, read_grid, run_id

    study = results / "study"
    records = [r for name in ("runs-1.jsonl", "runs-2.jsonl") for r in load_results(study / name)]
    configs = [c for name in STUDY_GRIDS for c in read_grid(study / name)]
    planned = {run_id(c) for c in configs}
    twice = [i for i, count in Counter(r["run_id"] for r in records).items() if count > 1]
    unplanned = [r["run_id"] for r in records if r["run_id"] not in planned]
    problems = []
    if twice:
        problems.append(f"run(s) recorded twice: {', '.join(twice)}")
    if unplanned:
        problems.append(f"run(s) none of {', '.join(STUDY_GRIDS)} plans: {', '.join(unplanned)}")
    if problems:
        raise DCSError(f"{study}: {'; '.join(problems)}")
    blocks = Counter(map(setup_of, records))
    if len(blocks) > 1:
        usual = dict(blocks.most_common(1)[0][0])  # the set-up most runs share
        odd = []
        for r in records:
            setup = dict(setup_of(r))
            if setup != usual:
                keys = sorted(usual.keys() | setup.keys())
                differs = [f"{k} {setup.get(k, 'missing')}" for k in keys if setup.get(k) != usual.get(k)]
                odd.append(f"{r['run_id']} ({', '.join(differs)})")
        raise DCSError(f"{study}: the study's runs must share one set-up; these differ from the rest: {'; '.join(odd)}")
    return records, configs


def setup_of(record: dict) -> tuple:
    """What must be the same for every run of the study: device, precision, processes, versions, commit."""
    versions = record.get("versions") or {}
    return (
        ("device", record.get("device")),
        ("precision", record.get("precision")),
        ("processes", record.get("world_size")),
        *sorted(versions.items()),
    )
