"""Command line: ``python -m dcs_lib {demo,train,grid,report}`` (also installed as ``dcs``).

Every mistake a user can make ends in a one-line message and exit status 2; Ctrl-C
ends with status 130 after saying what was kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import tomllib
from pathlib import Path

from . import distributed
from .errors import DCSError
from .methods import DISAGREEMENT_SOURCES, METHODS, RunConfig
from .tasks import TASKS
from .train import AMP_MODES

HELP = {
    "task": f"GLUE task, any case: {', '.join(TASKS)}",
    "method": f"training method: {', '.join(METHODS)}",
    "model": "hub id or local folder of a pretrained encoder (default: the bundled all-MiniLM-L6-v2)",
    "seed": "seed for initialisation, shuffling, dropout and (unless --data-seed) subsets",
    "data_dir": "folder in the glue_data layout (default: $DCS_GLUE_DIR, else the Hugging Face hub)",
    "n_train": "train on a seeded random subset of N examples",
    "n_dev": "evaluate on a seeded random subset of N dev examples (quick checks only)",
    "data_seed": "seed of the subsets, when it should differ from --seed",
    "holdout": "use N training examples (fixed across seeds) as the dev set, to tune without seeing dev",
    "max_length": "truncate inputs to this many tokens",
    "epochs": "student epochs",
    "batch_size": "examples per batch",
    "lr": "peak learning rate of AdamW",
    "weight_decay": "AdamW weight decay (not on biases and LayerNorm)",
    "warmup_ratio": "fraction of steps with linear warm-up; linear decay to 0 after",
    "grad_accum": "accumulate gradients over this many batches per optimiser step",
    "max_grad_norm": "clip the gradient norm to this (0: no clipping)",
    "group_by_length": "batch examples of similar length together (less padding)",
    "amp": f"mixed precision: {', '.join(AMP_MODES)} (auto: bf16 (or fp16) on CUDA, off elsewhere; "
    "bf16 may be asked for on CPUs with AVX512-BF16 or AMX)",
    "compile": "torch.compile the model",
    "fused_adamw": "step AdamW with one fused kernel, as the Trainer does: faster, but it rounds differently "
    "from the default, so runs with and without it differ in the last digits",
    "device": "force a device, e.g. cpu or cuda:1 (default: cuda, then mps, then cpu)",
    "teacher_epochs": "epochs of plain fine-tuning for the teacher (0: the untrained checkpoint; "
    "the student's --epochs with another --teacher-seed: a converged peer teacher)",
    "teacher_seed": "seed of the teacher (default: the student's --seed; a vanilla run of seed S "
    "leaves its logits cached as the teacher with --teacher-seed S --teacher-epochs its epochs, on the full dev "
    "set or with --data-seed fixed, so that the teacher's dev score is on the student's dev set)",
    "teacher_model": "hub id or local folder of the teacher's checkpoint, or bundled-mpnet (all-mpnet-base-v2, "
    "the project's extra [mpnet]) (default: the student's --model)",
    "teacher_folds": "K >= 2: out-of-fold teacher, K teachers each trained on the other folds, so every "
    "training example's logits come from a model that never saw it (default: 1, one teacher on all)",
    "alpha": "weight of CE on the labels; 1 - alpha goes to KL to the teacher (kd, dcs)",
    "temperature": "softmax temperature T of the KD term (scaled by T^2)",
    "lam": "lambda, the size of the weight update (0: uniform weights, and DCS equals kd with the same "
    "--plain-epochs: with the defaults kd --plain-epochs 1, not plain kd)",
    "step": "weight-update step: fixed (lambda) or adaboost (AdaBoost's step lambda * 0.5 ln((1-eps)/eps), "
    "applied one-sided: at lambda 1 a discordant example's weight rises by sqrt((1-eps)/eps) relative to "
    "a concordant one's, where AdaBoost's ratio is (1-eps)/eps)",
    "accumulate": "weights build up across epochs (--no-accumulate: restart from 1 each epoch)",
    "clip_min": "lowest sample weight after rescaling to mean 1",
    "clip_max": "highest sample weight after rescaling to mean 1",
    "weight_norm": "batch: a batch's weighted loss is divided by its weight sum, so weights only rebalance "
    "examples within a batch; mean: by its size, so (weights averaging 1 over the training set) a batch of "
    "heavy examples takes a bigger step, AdaBoost's global weighting",
    "disagreement_source": f"student predictions for the update: {', '.join(DISAGREEMENT_SOURCES)} "
    "(eval: an extra eval-mode pass; train: the epoch's own training logits)",
    "delta": "regression: student and teacher disagree when scores differ by more than this",
    "plain_epochs": "epochs of plain CE before weighting starts (default: 1 for dcs and reweight, 0 for kd)",
}
SHORT = {"temperature": ["--temperature", "-T"], "lam": ["--lam", "--lambda"]}


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(RunConfig):
        flags = SHORT.get(field.name, ["--" + field.name.replace("_", "-")])
        default = field.default
        kind = {"int | None": int, "str | None": str, "int": int, "float": float, "str": str}.get(str(field.type))
        help_text = HELP[field.name] if "default:" in HELP[field.name] else f"{HELP[field.name]} (default: {default})"
        if field.type in (bool, "bool"):
            parser.add_argument(
                *flags, dest=field.name, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        else:
            parser.add_argument(
                *flags, dest=field.name, type=kind, default=default, metavar=field.name.upper(), help=help_text
            )


def _config(args: argparse.Namespace) -> RunConfig:
    names = {f.name for f in dataclasses.fields(RunConfig)}
    return RunConfig(**{k: v for k, v in vars(args).items() if k in names})


def _progress(args) -> bool | None:
    if not args.no_progress:
        return None
    import datasets

    datasets.disable_progress_bars()  # tokenisation bars too
    return False


def cmd_train(args) -> None:
    from .experiments import append_record, check_writable
    from .methods import run, run_id

    cfg = _config(args)
    cfg.validate()
    if args.resume and not args.checkpoint_dir:
        raise DCSError("--resume needs --checkpoint-dir")
    check_writable(args.results)
    record = run(
        cfg, progress=_progress(args), cache_dir=args.cache_dir, checkpoint_dir=args.checkpoint_dir, resume=args.resume
    )
    if not distributed.world().is_main:
        return  # under torchrun, rank 0 alone writes and reports
    record["run_id"] = run_id(cfg)
    append_record(args.results, record)
    metric = record["metric"]
    print(
        f"{record['task']} {record['method']} seed {record['seed']}: {metric} best {record['best'][metric]:.4f} "
        f"(epoch {record['best']['epoch']}), final {record['final'][metric]:.4f}; {record['wall_s']:.0f}s on "
        f"{record['device']}; appended to {args.results}"
    )


def cmd_grid(args) -> None:
    from .experiments import read_grid, run_grid

    configs = read_grid(args.config)
    ran = run_grid(
        configs,
        args.results,
        data_dir=args.data_dir,
        progress=_progress(args),
        cache_dir=args.cache_dir,
        shard=args.shard,
        done_in=args.skip_runs_in,
        only=dict(args.only),
        checkpoint_dir=args.checkpoint_dir,
    )
    where = f" (shard {args.shard[0] + 1}/{args.shard[1]})" if args.shard else ""
    print(f"grid done{where}: {ran} run(s) added, {len(configs)} in the grid; results in {args.results}")


def _only(text: str) -> tuple[str, list]:
    """'task=rte,mrpc' -> ('task', ['rte', 'mrpc']); values are read as TOML where they can be."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,VALUE...], like task=rte,mrpc, got {text!r}")

    def value(item: str):
        try:
            return tomllib.loads(f"v = {item}")["v"]
        except tomllib.TOMLDecodeError:
            return item

    return key.strip(), [value(item.strip()) for item in values.split(",")]


def _shard(text: str) -> tuple[int, int]:
    """'2/4' -> (1, 4): shard numbers are 1-based on the command line."""
    try:
        number, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, like 2/4, got {text!r}") from None
    if not 1 <= number <= count:
        raise argparse.ArgumentTypeError(f"shard {text}: I must be between 1 and N")
    return number - 1, count


def cmd_report(args) -> None:
    from .experiments import load_results
    from .report import write_report

    if args.study:
        study_report(args)
        return
    if not args.results:
        raise DCSError("report needs a results file (or --study, run from the project's root folder)")
    records = load_results(args.results)
    if not records:
        raise DCSError(f"results file {' '.join(args.results)} holds no valid runs")
    out = args.out or str(Path(args.results[0]).with_suffix("")) + "_report"
    from .report import ABLATION_KEYS

    # Runs that differ in a setting are told apart by it, so they are never paired as one method.
    # Not by teacher_epochs: the teacher column names the epochs already, and a vanilla run, which
    # has no teacher, must still pair with KD and DCS runs of every teacher.
    varying = [
        k for k in ABLATION_KEYS if k != "teacher_epochs" and len({repr(r["config"].get(k)) for r in records}) > 1
    ]
    paths = write_report(records, out, tuple(dict.fromkeys([*args.by, *varying])))
    print(paths["summary"].read_text())
    plots = ", ".join(p.name for p in paths["plots"].values())
    print(f"written under {out}: runs.csv, summary.csv, summary.md, paired.csv, teachers.csv, {plots}")


def study_report(args) -> None:
    """``report --study``: the study's records, checked against its grids, Holm over its protocol's family."""
    from .report import write_report
    from .study import STUDY_FAMILY, study_results

    if args.results or args.by:
        raise DCSError(
            "report --study reads the study's own records and groups them as its protocol says: "
            "drop the results files and --by"
        )
    results = Path("data/results")
    if not (results / "study" / "PROTOCOL.md").is_file():
        raise DCSError(f"no study in {results / 'study'}: run report --study from the project's root folder")
    records, _ = study_results(results)
    out = Path(args.out or results / "study" / "report")
    paths = write_report(records, out, family=list(STUDY_FAMILY))
    family = "\n  ".join(map(str, STUDY_FAMILY))
    print(f"{len(records)} runs of the study; Holm's family (the protocol's primary comparisons):\n  {family}")
    print(paths["summary"].read_text())
    print(f"written under {out}")


def cmd_demo(args) -> None:
    from .experiments import append_record, check_writable
    from .methods import prepare_data, run
    from .models import load_tokenizer
    from .report import markdown, plot_curves, runs_frame

    out = Path(args.out)
    results = check_writable(out / "records.jsonl")
    base = RunConfig(
        task="sst2",
        model=args.model,
        data_dir=args.data_dir,
        seed=args.seed,
        epochs=args.epochs,
        teacher_epochs=args.teacher_epochs,
        n_train=args.n_train,
        n_dev=args.n_dev,
        max_length=64,  # SST-2's sentences are short: 64 tokens cut almost none
        data_seed=0,  # the same training subset whatever the seed
        amp=args.amp,
    )
    task = base.validate()
    tokenizer = load_tokenizer(base.model)
    data = prepare_data(base, task, tokenizer)
    print(
        f"SST-2: {len(data['train'])} training and {len(data['validation'])} dev examples; "
        f"{base.epochs} student epochs, teacher {base.teacher_epochs} epochs, seed {base.seed}"
    )
    records, start = [], time.perf_counter()
    for method in ("vanilla", "dcs"):
        print(f"\n== {method} ==")
        record = run(
            dataclasses.replace(base, method=method),
            progress=_progress(args),
            cache_dir=out / "cache",
            data=data,
            tokenizer=tokenizer,
        )
        append_record(results, record)
        records.append(record)
    frame = runs_frame(records)
    teacher = records[-1]["teacher"]["final"]
    print("\nSST-2 dev accuracy (points):\n")
    print(markdown(frame[["method", "seed", "best", "best_epoch", "final", "wall_s"]].round(2)))
    if teacher:
        print(f"\nteacher after {base.teacher_epochs} epochs: {100 * teacher['accuracy']:.2f}")
    plot = plot_curves(records, out / "curves.png")
    print(f"\ntotal {time.perf_counter() - start:.0f}s; records in {results}, plot in {plot}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcs", description="Dynamic Corrective Self-Distillation on GLUE.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,train,grid,report}")

    def common(p, cache=True):
        p.add_argument("--no-progress", action="store_true", help="hide progress bars (also: TQDM_DISABLE=1)")
        if cache:
            p.add_argument(
                "--cache-dir", default="runs/cache", help="where teacher logits are cached (default: runs/cache)"
            )

    demo = sub.add_parser("demo", help="vanilla vs DCS on 2,000 SST-2 sentences, one seed, with a table and a plot")
    demo.add_argument("--data-dir", help=HELP["data_dir"])
    demo.add_argument("--model", default=RunConfig.model, help=HELP["model"])
    demo.add_argument("--epochs", type=int, default=3, help="student epochs (default: 3)")
    demo.add_argument("--teacher-epochs", type=int, default=2, help="teacher epochs (default: 2)")
    demo.add_argument("--n-train", type=int, default=2000, help=HELP["n_train"] + " (default: 2000)")
    demo.add_argument("--n-dev", type=int, help=HELP["n_dev"] + " (default: all 872)")
    demo.add_argument(
        "--amp", default="auto", help=HELP["amp"]
    )
    demo.add_argument("--seed", type=int, default=42, help="seed (default: 42)")
    demo.add_argument("--out", default="runs/demo", help="folder for records, plot and cache (default: runs/demo)")
    common(demo, cache=False)
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser(
        "train",
        help="one run; appends its record to a results file",
    )
    _add_run_options(train)
    train.add_argument("--results", default="runs/results.jsonl", help="results file (default: runs/results.jsonl)")
    train.add_argument(
        "--checkpoint-dir", help="save the student, optimiser, weights and RNG states here after every epoch"
    )
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    common(train)
    train.set_defaults(func=cmd_train)

    grid = sub.add_parser("grid", help="run every configuration of a grid file not yet in the results file")
    grid.add_argument("config", help="grid file (TOML or JSON): a [base] table and [[grid]] tables of lists")
    grid.add_argument("--results", required=True, help="results file; finished runs in it are skipped")
    grid.add_argument("--data-dir", help=HELP["data_dir"])
    grid.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="run only shard I of N (runs sharing a teacher stay together); give each shard its own --results",
    )
    grid.add_argument(
        "--skip-runs-in",
        nargs="*",
        default=[],
        metavar="FILE",
        help="results files whose runs count as done too (e.g. the merged results of an earlier sharded grid)",
    )
    grid.add_argument(
        "--only",
        type=_only,
        action="append",
        default=[],
        metavar="KEY=VALUE[,VALUE...]",
        help="run only the runs with these settings, e.g. --only task=sst2 --only method=dcs,vanilla",
    )
    grid.add_argument(
        "--checkpoint-dir",
        help="save each run after every epoch in a folder of this one, so an interrupted run resumes "
        "after its last finished epoch (the folder is removed when the run is recorded)",
    )
    common(grid)
    grid.set_defaults(func=cmd_grid)

    report = sub.add_parser("report", help="summary table, paired differences and a plot from a results file")
    report.add_argument("results", nargs="*", help="results file(s) written by train or grid")
    report.add_argument("--out", help="output folder (default: next to the results file)")
    report.add_argument(
        "--by", nargs="*", default=[], metavar="KEY", help="also group by these config keys, e.g. --by lam alpha"
    )
    report.add_argument(
        "--study",
        action="store_true",
        help="the study in data/results/study (run from the project's root folder): its records, checked against "
        "its grid files, with Holm's adjustment over its protocol's six primary comparisons; "
        "written to data/results/study/report unless --out",
    )
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DCSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished runs (with --checkpoint-dir, finished epochs too) are saved; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    return 0
