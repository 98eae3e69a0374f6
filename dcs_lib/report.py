"""Tables and figures from run records (the dicts :func:`dcs_lib.methods.run` returns).

Scores are shown in points (metric x 100), as GLUE tables do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

METHOD_ORDER = ("vanilla", "kd", "reweight", "dcs")
# The settings the ablations vary, one at a time, away from RunConfig's defaults.
ABLATION_KEYS = ("lam", "alpha", "temperature", "teacher_epochs", "disagreement_source", "step", "accumulate")


def changed_settings(record: dict) -> dict:
    """The ablation settings of a run that differ from RunConfig's defaults."""
    from .methods import RunConfig

    defaults = RunConfig()
    return {k: record["config"][k] for k in ABLATION_KEYS if record["config"].get(k) != getattr(defaults, k)}


def ablation_frame(records: list[dict], key: str, method: str = "dcs") -> pd.DataFrame:
    """Runs of ``method`` on full training sets where ``key`` alone may differ from its default.

    One row per run (task, seed, ``key``, best, final in points): the runs of one
    ablation, its default value included.
    """
    chosen = [
        r
        for r in records
        if r["method"] == method and r["config"].get("n_train") is None and set(changed_settings(r)) <= {key}
    ]
    return runs_frame(chosen, by=(key,))


def runs_frame(records: list[dict], by: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per run: task, method, seed, metric, best and final score (points), device, plus config keys ``by``."""
    rows = []
    for r in records:
        metric = r.get("metric") or next(iter(r["final"].keys() - {"epoch"}))
        rows.append(
            {
                "task": r["task"],
                "method": r["method"],
                "seed": r["seed"],
                **{key: r["config"].get(key) for key in by},
                "metric": metric,
                "best": 100 * r["best"][metric],
                "final": 100 * r["final"][metric],
                "best_epoch": r["best"]["epoch"],
                "wall_s": r.get("wall_s"),
                "device": r.get("device"),
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        order = {m: i for i, m in enumerate(METHOD_ORDER)}
        frame = frame.sort_values(
            ["task", *by, "method", "seed"], key=lambda s: s.map(order) if s.name == "method" else s
        )
    return frame.reset_index(drop=True)


def summary(frame: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean, standard deviation and median of best-epoch and last-epoch scores per task and method."""
    keys = ["task", "metric", *by, "method"]
    table = frame.groupby(keys, sort=False).agg(
        runs=("seed", "size"),
        best_mean=("best", "mean"),
        best_std=("best", "std"),
        best_median=("best", "median"),
        final_mean=("final", "mean"),
        final_std=("final", "std"),
        final_median=("final", "median"),
    )
    return table.round(2).reset_index()


def paired_difference(
    frame: pd.DataFrame,
    method: str = "dcs",
    baseline: str = "vanilla",
    column: str = "final",
    n_boot: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per task, the mean over seeds of ``method - baseline`` (same seed) with a bootstrap 95% interval."""
    rows = []
    for task, group in frame.groupby("task", sort=False):
        pivot = group.pivot_table(index="seed", columns="method", values=column)
        if method not in pivot or baseline not in pivot:
            continue
        diff = (pivot[method] - pivot[baseline]).dropna().to_numpy()
        if len(diff) == 0:
            continue
        boot = np.random.default_rng(seed).choice(diff, size=(n_boot, len(diff))).mean(axis=1)
        rows.append(
            {
                "task": task,
                "pairs": len(diff),
                "mean_diff": diff.mean(),
                "ci_low": np.percentile(boot, 2.5),
                "ci_high": np.percentile(boot, 97.5),
            }
        )
    return pd.DataFrame(rows).round(2)


def epoch_scores(records: list[dict], by: tuple[str, ...] = ("lr",)) -> pd.DataFrame:
    """One row per run and epoch: the dev (or holdout) score at the end of that epoch, in points."""
    rows = [
        {
            "task": r["task"],
            "method": r["method"],
            "seed": r["seed"],
            **{key: r["config"].get(key) for key in by},
            "epoch": e["epoch"],
            "score": 100 * e["dev"][r["metric"]],
        }
        for r in records
        for e in r["epochs"]
    ]
    return pd.DataFrame(rows)


def choose_schedule(records: list[dict], min_epochs: int = 3) -> dict:
    """The learning rate and epoch count with the best mean score over all runs and seeds.

    The rule of the GLUE protocol, fixed before any run: average the holdout score
    at each (learning rate, epoch) over methods and seeds; take the best with at
    least ``min_epochs`` epochs; on a tie, fewer epochs, then the smaller rate.
    Returns ``{"lr", "epochs", "score", "table"}``; ``table`` is the mean per
    (lr, epoch), learning rates as rows.
    """
    frame = epoch_scores(records)
    table = frame.groupby(["lr", "epoch"])["score"].mean().unstack("epoch")
    allowed = table.loc[:, [e for e in table.columns if e >= min_epochs]]
    if allowed.empty:
        raise ValueError(f"no run reached {min_epochs} epochs")
    candidates = [(round(score, 6), -epoch, -lr) for (lr, epoch), score in allowed.stack().items()]
    score, epoch, lr = max(candidates)
    return {"lr": -lr, "epochs": -epoch, "score": score, "table": table.round(2)}


def plot_summary(frame: pd.DataFrame, path: str | Path, column: str = "final") -> Path:
    """One panel per task: each method's per-seed scores as dots and their mean as a bar."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(frame["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        group = frame[frame["task"] == task]
        methods = list(dict.fromkeys(group["method"]))
        for x, method in enumerate(methods):
            values = group.loc[group["method"] == method, column]
            ax.bar(x, values.mean(), color="#c9d6e8", edgecolor="#34557a")
            ax.plot(np.full(len(values), x), values, "o", color="#34557a", ms=4)
        ax.set_xticks(range(len(methods)), methods)
        ax.set_title(f"{task} ({group['metric'].iloc[0]}, {column} epoch)")
        low, high = group[column].min(), group[column].max()
        ax.set_ylim(max(0, low - 5), min(100, high + 3))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(records: list[dict], path: str | Path) -> Path:
    """Dev score per epoch for each run, and the weights' effective sample size where there are weights."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for r in records:
        epochs = [e["epoch"] for e in r["epochs"]]
        left.plot(epochs, [100 * e["dev"][r["metric"]] for e in r["epochs"]], "o-", label=r["method"])
        if any("weights" in e for e in r["epochs"]):
            right.plot(
                epochs, [e.get("weights", {}).get("ess", np.nan) for e in r["epochs"]], "o-", label=f"{r['method']} ESS"
            )
            right.plot(
                epochs,
                [e.get("weights", {}).get("discordant", np.nan) for e in r["epochs"]],
                "s--",
                label=f"{r['method']} discordant",
            )
    left.set_xticks(epochs)
    right.set_xticks(epochs)
    left.set(xlabel="epoch", ylabel=f"dev {records[0]['metric']} (points)", title=f"{records[0]['task']}: dev score")
    right.set(xlabel="epoch", ylabel="fraction", title="sample weights", ylim=(0, 1.05))
    left.legend()
    right.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (no extra dependency), for the README and the terminal."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [
        "| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join([header, rule, *lines])


def write_report(records: list[dict], out_dir: str | Path, by: tuple[str, ...] = ()) -> dict[str, Path]:
    """Write runs.csv, summary.csv, summary.md, paired.csv and summary.png under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = runs_frame(records, by)
    table = summary(frame, by)
    paired = paired_difference(frame)
    frame.to_csv(out / "runs.csv", index=False)
    table.to_csv(out / "summary.csv", index=False)
    paired.to_csv(out / "paired.csv", index=False)
    text = markdown(table) + (
        "\n\nDCS - vanilla, same seed (final epoch, points, bootstrap 95% CI):\n\n" + markdown(paired)
        if not paired.empty
        else ""
    )
    (out / "summary.md").write_text(text + "\n")
    return {"runs": out / "runs.csv", "summary": out / "summary.md", "plot": plot_summary(frame, out / "summary.png")}
