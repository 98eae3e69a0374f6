"""The whole GLUE study on one machine: tune, fix the protocol, run the grid, in parallel.

    python scripts/study.py --work runs/study [--workers 8] [--deadline UNIX_TIME] [--smoke]
    python scripts/study.py --work runs/study --continue-from data/results   # finish the committed grid

1. Tuning (``data/results/tuning/grid.toml``): vanilla and DCS on 500 examples carved
   out of RTE's training set; the dev sets are not touched.
2. The protocol: :func:`dcs_lib.report.choose_schedule` picks the learning rate and
   number of epochs from the tuning runs alone, by a rule fixed in advance, and the
   GLUE grid file is written with them (``WORK/glue-grid.toml``).
3. The GLUE grid: the four methods on RTE, MRPC, CoLA and SST-2 (2,000 examples),
   five seeds; then the ablations (RTE and MRPC, three seeds) and the SST-2 size sweep.

Each stage is split into ``--workers`` shards (``python -m dcs_lib grid --shard``),
one process each. They share one GPU well: a single run of a 22M-parameter model at
batch 32 keeps the GPU busy only a fraction of the time (on an H200, twelve processes
kept it busy throughout). Shard results go to ``WORK/<stage>/shard-*.jsonl`` and are merged
into ``WORK/<stage>.jsonl``. Everything resumes: run the same command again and
finished runs are skipped; ``--continue-from data/results`` goes on from the committed
results instead, with the committed GLUE grid file and no tuning (the new runs land in WORK;
append them to the committed files). A committed run counts as done only in its own block
(device, precision and torch version, as its record says): continued elsewhere, the grid runs
its whole block again.
``--deadline`` stops the workers at that time, keeping every finished run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcs_lib.experiments import load_results, pending, read_grid, select_shard, teacher_group  # noqa: E402
from dcs_lib.report import choose_schedule  # noqa: E402

TUNING_GRID = ROOT / "data/results/tuning/grid.toml"
SEEDS = [1, 2, 3, 4, 5]
ABLATION_SEEDS = [1, 2, 3]
METHODS = ["dcs", "vanilla", "kd", "reweight"]

# The GLUE grid, most informative runs first. Each entry is one [[grid]] table.
TABLES = [
    ("Quality: RTE and MRPC, DCS and vanilla first", {"task": ["rte", "mrpc"], "seed": SEEDS, "method": METHODS[:2]}),
    ("Quality: the other two methods", {"task": ["rte", "mrpc"], "seed": SEEDS, "method": METHODS[2:]}),
    ("Quality: CoLA", {"task": "cola", "seed": SEEDS, "method": METHODS}),
    ("Quality: SST-2 as a limited-data task", {"task": "sst2", "n_train": 2000, "seed": SEEDS, "method": METHODS}),
    *(
        (f"Ablation: {key}", {"task": ["rte", "mrpc"], "seed": ABLATION_SEEDS, "method": "dcs", key: values})
        for key, values in [
            ("lam", [0.0, 0.5, 1.0, 2.0, 3.0, 5.0]),
            ("alpha", [0.3, 0.5, 0.7, 1.0]),
            ("temperature", [1.0, 2.0, 4.0]),
            ("teacher_epochs", [0, 1, 2, 3]),
            ("disagreement_source", ["eval", "train"]),
            ("step", ["fixed", "adaboost"]),
            ("accumulate", [True, False]),
        ]
    ),
    (
        "Data size: SST-2 training subsets",
        {"task": "sst2", "n_train": [500, 1000, 2000, 4000], "seed": ABLATION_SEEDS, "method": ["vanilla", "dcs"]},
    ),
]


def toml_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def glue_grid(lr: float, epochs: int, note: str, smoke: bool = False) -> str:
    """The text of the GLUE grid file, with the chosen learning rate and epochs in [base]."""
    base = {"lr": lr, "epochs": epochs, "teacher_epochs": 2, "batch_size": 32, "max_length": 128}
    if smoke:
        base.update(n_train=48, n_dev=32, teacher_epochs=1)
    lines = [
        "# The GLUE grid: quality table, ablations, SST-2 size sweep. Written by scripts/study.py;",
        f"# {note}",
        "#   python -m dcs_lib grid data/results/glue/grid.toml --results data/results/glue/runs.jsonl",
        "# A setting not named here has its RunConfig default (python -m dcs_lib train --help).",
        "",
        "[base]",
        *(f"{key} = {toml_value(value)}" for key, value in base.items()),
    ]
    for title, table in TABLES:
        if smoke:
            table = {**table, "seed": 1}
            if "n_train" in table:
                table["n_train"] = 48 if isinstance(table["n_train"], int) else [40, 48]
        lines += ["", f"# {title}", "[[grid]]", *(f"{key} = {toml_value(value)}" for key, value in table.items())]
    return "\n".join(lines) + "\n"


def run_stage(
    name: str, grid: Path, work: Path, workers: int, deadline: float | None, env: dict, done: list[Path]
) -> None:
    """Run ``grid`` in ``workers`` shard processes; merge their results into ``work/name.jsonl``.

    Runs in the files ``done`` are not run again (nor copied into ``work``).
    """
    configs = read_grid(grid)
    workers = max(1, min(workers, len({teacher_group(c) for c in configs})))
    folder = work / name
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    print(f"{name}: {len(configs)} runs in {workers} shards", flush=True)
    processes: dict[str, subprocess.Popen] = {}
    for i in range(workers):
        if not select_shard(configs, i, workers):
            continue
        command = [
            sys.executable, "-m", "dcs_lib", "grid", str(grid),
            "--results", str(folder / f"shard-{i + 1:02d}.jsonl"),
            "--shard", f"{i + 1}/{workers}",
            "--cache-dir", str(work / "cache"),
            "--no-progress",
            *(["--skip-runs-in", *map(str, done)] if done else []),
        ]  # fmt: skip
        log = open(folder / "logs" / f"shard-{i + 1:02d}.log", "a")
        label = f"shard {i + 1}/{workers}"
        processes[label] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_interruptible,  # a shell may have started us with SIGINT ignored
        )
    try:
        while any(p.poll() is None for p in processes.values()):
            if deadline is not None and time.time() > deadline:
                print(f"{name}: deadline reached, stopping the workers (finished runs are kept)", flush=True)
                for p in processes.values():
                    p.send_signal(signal.SIGINT)
                for p in processes.values():
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                break
            time.sleep(2)
            merge(folder, work / f"{name}.jsonl")
    finally:
        merge(folder, work / f"{name}.jsonl")
    failed = [label for label, p in processes.items() if p.returncode not in (0, 130, -signal.SIGINT)]
    finished = sum(done_here for _, _, done_here in pending(configs, work / f"{name}.jsonl", done))
    print(f"{name}: {finished} of {len(configs)} runs finished" + (f"; failed: {failed}" if failed else ""), flush=True)


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def merge(folder: Path, target: Path) -> None:
    """Concatenate the shard files (each holds whole lines only) into ``target``, atomically."""
    text = "".join(path.read_text() for path in sorted(folder.glob("shard-*.jsonl")))
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for results, logs and the teacher cache")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel shard processes")
    parser.add_argument("--deadline", type=float, help="stop at this Unix time, keeping finished runs")
    parser.add_argument("--smoke", action="store_true", help="tiny subsets and one seed: check the mechanics")
    parser.add_argument(
        "--continue-from",
        metavar="DIR",
        help="results folder of an earlier study (data/results): take over its GLUE grid file (no tuning) and "
        "skip the runs already in its results files (those of this block: device, precision, torch version)",
    )
    args = parser.parse_args()

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}

    done: list[Path] = []  # results files of an earlier study whose runs count as done (in this block)
    grid = work / "glue-grid.toml"
    if args.continue_from:
        earlier = Path(args.continue_from)
        if (earlier / "glue" / "runs.jsonl").is_file():
            done.append(earlier / "glue" / "runs.jsonl")
        if not grid.exists():
            grid.write_text((earlier / "glue" / "grid.toml").read_text())

    if args.continue_from:  # the earlier study's grid file is the protocol: nothing to tune
        print(f"tuning: skipped, the GLUE grid file is {args.continue_from}'s", flush=True)
    else:
        tuning = TUNING_GRID
        if args.smoke:
            tuning = work / "tuning-grid.toml"
            text = TUNING_GRID.read_text().replace("holdout = 500", "holdout = 32\nn_train = 64")
            tuning.write_text(text.replace("epochs = 5", "epochs = 3"))
        run_stage("tuning", tuning, work, args.workers, args.deadline, env, [])

        choice = choose_schedule(load_results([f for f in [work / "tuning.jsonl"] if f.is_file()]))
        print(f"holdout accuracy (points), mean over methods and seeds:\n{choice['table']}", flush=True)
        note = (
            f"lr {choice['lr']:g} and {choice['epochs']} epochs chosen on the RTE holdout "
            f"(mean {choice['score']:.2f}; dcs_lib.report.choose_schedule)"
        )
        print(note, flush=True)
        if not grid.exists():  # a resumed study keeps the protocol it chose the first time
            grid.write_text(glue_grid(choice["lr"], choice["epochs"], note, smoke=args.smoke))
    run_stage("glue", grid, work, args.workers, args.deadline, env, done)


if __name__ == "__main__":
    main()
