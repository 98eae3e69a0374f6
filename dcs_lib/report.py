"""Tables, statistics and figures from run records (the dicts :func:`dcs_lib.methods.run` returns).

Scores are shown in points (metric x 100), as GLUE tables do. Runs are only ever
compared within one *block*: the same device, precision and torch version. Paired
differences over seeds get a t-interval with n - 1 degrees of freedom, an exact
sign-flip permutation p-value and the minimum effect detectable at 80% power; a
bootstrap interval is added only where there are at least 20 pairs.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .errors import DCSError

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


def precision_of(record: dict) -> str:
    """The precision a run trained in; records from before it was recorded follow the amp rule of their day."""
    if record.get("precision"):
        return record["precision"]
    amp = record.get("config", {}).get("amp", "auto")
    on_cuda = str(record.get("device", "")).startswith("cuda")
    if amp == "off" or (amp == "auto" and not on_cuda):
        return "float32"
    return "float16" if amp == "fp16" else "bfloat16"


def block_of(record: dict) -> str:
    """The comparison block of a run: device, precision and torch version, e.g. 'cpu, bfloat16, torch 2.13.0+cpu'."""
    return f"{record.get('device')}, {precision_of(record)}, torch {record.get('versions', {}).get('torch')}"


def teacher_label(record: dict) -> str:
    """Which teacher a KD or DCS run learnt from, in words; '' for vanilla and reweight."""
    config = record["config"]
    if record["method"] not in ("kd", "dcs"):
        return ""
    epochs = config.get("teacher_epochs", 2)
    folds = f"{config['teacher_folds']} folds, " if config.get("teacher_folds", 1) > 1 else ""
    if config.get("teacher_model") not in (None, config.get("model")):  # another model: named, whatever its seed
        return f"{Path(config['teacher_model']).name} ({folds}{epochs} ep)"
    if folds:
        return f"out-of-fold ({folds}{epochs} ep)"
    if config.get("teacher_seed") not in (None, record["seed"]):
        return f"peer ({epochs} ep)"
    return f"own seed ({epochs} ep)"


def metric_of(record: dict) -> str:
    """The record's primary metric (older records name it only as the key of their scores)."""
    return record.get("metric") or next(iter(record["final"].keys() - {"epoch"}))


def runs_frame(records: list[dict], by: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per run: task, method, teacher, seed, metric, best and final score (points), block, plus config keys ``by``.

    ``teacher`` names the teacher of KD and DCS runs (:func:`teacher_label`); ``block``
    the device, precision and torch version (:func:`block_of`); ``teacher_dev`` the
    teacher's dev score in points, where the record has it.
    """
    rows = []
    for r in records:
        metric = metric_of(r)
        teacher_final = (r.get("teacher") or {}).get("final") or {}
        rows.append(
            {
                "task": r["task"],
                "method": r["method"],
                "teacher": teacher_label(r),
                "seed": r["seed"],
                **{key: r["config"].get(key) for key in by},
                "metric": metric,
                "best": 100 * r["best"][metric],
                "final": 100 * r["final"][metric],
                "best_epoch": r["best"]["epoch"],
                "teacher_dev": 100 * teacher_final[metric] if metric in teacher_final else np.nan,
                "wall_s": r.get("wall_s"),
                "device": r.get("device"),
                "precision": precision_of(r),
                "block": block_of(r),
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        order = {m: i for i, m in enumerate(METHOD_ORDER)}
        frame = frame.sort_values(
            ["block", "task", *by, "method", "teacher", "seed"], key=lambda s: s.map(order) if s.name == "method" else s
        )
    return frame.reset_index(drop=True)


def require_one_block(frame: pd.DataFrame) -> str:
    """The one block (device, precision, torch) of ``frame``'s runs; a DCSError naming the runs if there are more."""
    blocks = list(dict.fromkeys(frame["block"]))
    if len(blocks) > 1:
        names = "; ".join(
            f"{block}: " + ", ".join(f"{t} {m} seed {s}" for t, m, s in group[["task", "method", "seed"]].values[:6])
            + (" ..." if len(group) > 6 else "")
            for block, group in frame.groupby("block", sort=False)
        )
        raise DCSError(f"these runs come from {len(blocks)} device/precision/version blocks and are not compared: {names}")
    return blocks[0]


def summary(frame: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean, standard deviation and median of best-epoch and last-epoch scores per task and method."""
    keys = ["block", "task", "metric", *by, "method", "teacher"]
    table = frame.groupby(keys, sort=False, dropna=False).agg(
        runs=("seed", "size"),
        best_mean=("best", "mean"),
        best_std=("best", "std"),
        best_median=("best", "median"),
        final_mean=("final", "mean"),
        final_std=("final", "std"),
        final_median=("final", "median"),
    )
    return table.round(2).reset_index()


def permutation_p(diff: np.ndarray, max_exact: int = 20, draws: int = 200_000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value of mean(diff) = 0 for paired differences.

    Under the null each pair's sign is a coin flip. Exact over all 2^n sign patterns
    up to ``max_exact`` pairs, otherwise from ``draws`` random patterns.
    """
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    if n == 0:
        return float("nan")
    if n <= max_exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(draws, n))
    means = np.abs(signs @ diff) / n
    return float(np.mean(means >= abs(diff.mean()) - 1e-12))


def min_detectable_effect(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference a two-sided paired t-test at ``alpha`` detects with ``power``.

    From the noncentral t distribution, given the standard deviation ``sd`` of the
    paired differences and ``n`` pairs. Same unit as ``sd``.
    """
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    df, crit = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)

    def shortfall(effect: float) -> float:
        nc = effect / sd * np.sqrt(n)
        # the lower tail P(T < -crit) as the upper tail of -T: nct.cdf turns NaN far out in it (n = 2)
        return stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc) - power

    high = sd
    while shortfall(high) < 0:  # widen until the power is reached
        high *= 2
        if not np.isfinite(shortfall(high)) or high > 1e4 * sd:
            return float("nan")
    return float(optimize.brentq(shortfall, 0.0, high))


def paired_stats(diff, confidence: float = 0.95) -> dict:
    """Mean, t-interval (n - 1 df), permutation p-value and 80%-power MDE of paired differences.

    A percentile bootstrap interval is added only for n >= 20, where it can be trusted.
    """
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    mean = float(diff.mean()) if n else float("nan")
    sd = float(diff.std(ddof=1)) if n > 1 else float("nan")
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / np.sqrt(n) if n > 1 else float("nan")
    out = {
        "n": n,
        "mean_diff": mean,
        "sd": sd,
        "ci_low": float(mean - half),
        "ci_high": float(mean + half),
        "p_perm": permutation_p(diff),
        "mde80": min_detectable_effect(sd, n),
    }
    if n >= 20:
        boot = np.random.default_rng(0).choice(diff, size=(10_000, n)).mean(axis=1)
        out["boot_low"], out["boot_high"] = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    return out


def holm(pvalues, family_size: int | None = None) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (same order as given).

    ``family_size`` larger than the p-values given counts the family's missing members
    as p = 1 (not yet measured): the adjusted values can then only fall as they arrive.
    """
    p = np.asarray(pvalues, dtype=float)
    m = max(len(p), family_size or 0)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def paired_difference(
    frame: pd.DataFrame,
    method: str = "dcs",
    baseline: str = "vanilla",
    column: str = "final",
    by: tuple[str, ...] = (),
    teacher: str | None = None,
    baseline_teacher: str | None = None,
) -> pd.DataFrame:
    """Per block, task (and ``by``), ``method - baseline`` over seeds run by both: :func:`paired_stats`.

    Runs pair by seed within one block (device, precision, torch version), never
    across. ``teacher`` / ``baseline_teacher`` pick one teacher's runs (see
    :func:`teacher_label`); by default a method's runs are taken whatever their
    teacher, which requires one teacher per method and seed.
    """
    rows = []
    for keys, group in frame.groupby(["block", "task", *by], sort=False, dropna=False):
        chosen = {}
        for name, label in ((method, teacher), (baseline, baseline_teacher)):
            runs = group[group["method"] == name]
            if label is not None:
                runs = runs[runs["teacher"] == label]
            if runs["seed"].duplicated().any():
                raise DCSError(
                    f"{', '.join(map(str, keys))}: several {name} runs share a seed (teachers: "
                    f"{sorted(set(runs['teacher']))}); tell them apart by the settings that differ "
                    "(report --by KEY ..., e.g. --by lam alpha) or choose one teacher"
                )
            chosen[name] = runs.set_index("seed")[column]
        if method == baseline:
            raise DCSError("method and baseline must differ")
        both = pd.concat(chosen, axis=1).dropna()
        if both.empty:
            continue
        diff = (both[method] - both[baseline]).to_numpy()
        rows.append({**dict(zip(["block", "task", *by], keys)), **paired_stats(diff)})
    return pd.DataFrame(rows)  # unrounded: rounded twice, 1.0350002 would become 1.035, then 1.03


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


def save_figure(fig, path: str | Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (its folder made if missing) as a 120-dpi PNG, close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_summary(frame: pd.DataFrame, path: str | Path, column: str = "final", title: str | None = None) -> Path:
    """One panel per task (and training-set size): each method's per-seed scores as dots, their mean as a bar.

    KD and DCS runs with different teachers get a bar each, labelled with the teacher.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cells = frame["task"] + (
        (" " + frame["n_train"].map(lambda n: "" if pd.isna(n) else f"n={int(n)}")) if "n_train" in frame else ""
    )
    labels = frame["method"] + frame["teacher"].map(lambda t: f"\n{t}" if t else "") if "teacher" in frame else frame["method"]
    panels = list(dict.fromkeys(cells))
    width = max(3.2, 0.75 * labels.nunique())
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        group = frame[cells == panel]
        names = list(dict.fromkeys(labels[cells == panel]))
        for x, name in enumerate(names):
            values = group.loc[labels[cells == panel] == name, column]
            ax.bar(x, values.mean(), color="#c9d6e8", edgecolor="#34557a")
            ax.plot(np.full(len(values), x), values, "o", color="#34557a", ms=4)
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{panel.strip()} ({group['metric'].iloc[0]}, {column} epoch)")
        low, high = group[column].min(), group[column].max()
        ax.set_ylim(max(0, low - 5), min(100, high + 3))
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def when_frame(frame: pd.DataFrame, column: str = "final") -> pd.DataFrame:
    """One row per DCS run with a vanilla run of the same seed, block and cell (:func:`runs_frame` with ``n_train``).

    ``teacher_gap``: the teacher's dev score minus that vanilla run's (points);
    ``dcs_gain``: DCS minus vanilla; ``kd_gain``: KD with the same teacher minus vanilla,
    where that run exists; ``vanilla``: the vanilla run's score. The data of the "when
    does DCS help" figure.
    """
    cell = ["block", "task", "n_train"] if "n_train" in frame else ["block", "task"]
    keys = [*cell, "seed"]
    vanilla = frame[frame["method"] == "vanilla"].set_index(keys)[column].rename("vanilla")
    kd = frame[frame["method"] == "kd"].set_index([*keys, "teacher"])[column].rename("kd")
    dcs = frame[frame["method"] == "dcs"].set_index([*keys, "teacher"])[[column, "teacher_dev"]]
    rows = dcs.join(kd).reset_index().join(vanilla, on=keys).dropna(subset=["vanilla"])
    return pd.DataFrame(
        {
            **{k: rows[k] for k in [*keys, "teacher"]},
            "teacher_gap": rows["teacher_dev"] - rows["vanilla"],
            "dcs_gain": rows[column] - rows["vanilla"],
            "kd_gain": rows["kd"] - rows["vanilla"],
            "vanilla": rows["vanilla"],
        }
    )


def spearman(x, y) -> float:
    """Spearman's ρ of ``x`` and ``y``; NaN, without scipy's warning, where either has no spread."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def shared_term_rho(pairs: pd.DataFrame, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """What Spearman's ρ of the "when" figure is with the teacher's dev score shuffled (rows of :func:`when_frame`).

    Both axes subtract the same vanilla run: a vanilla run that happens to score low raises
    its points on both, so ρ comes out positive even if the teacher's score has nothing to
    do with DCS's gain. Shuffling the teachers' dev scores among the runs of each teacher
    keeps that shared term and each teacher's average level, and breaks the link between a
    seed's teacher score and that seed's runs. Returns the median ρ over ``draws`` shuffles
    and the share of them at least as large as the observed ρ: what ρ would be from the
    shared vanilla run and the teachers' levels alone, not a test of H4.
    """
    observed = spearman(pairs["teacher_gap"], pairs["dcs_gain"])
    if not np.isfinite(observed):  # no spread on an axis: no ρ, so nothing to set beside it
        return float("nan"), float("nan")
    teacher_dev = (pairs["teacher_gap"] + pairs["vanilla"]).to_numpy()
    groups = [np.flatnonzero((pairs["teacher"] == t).to_numpy()) for t in dict.fromkeys(pairs["teacher"])]
    rng = np.random.default_rng(seed)
    null = np.empty(draws)
    for d in range(draws):
        shuffled = teacher_dev.copy()
        for rows in groups:
            shuffled[rows] = rng.permutation(teacher_dev[rows])
        null[d] = spearman(shuffled - pairs["vanilla"].to_numpy(), pairs["dcs_gain"])
    return float(np.nanmedian(null)), float(np.mean(null >= observed - 1e-12))


def teacher_diagnostics(records: list[dict], by: tuple[str, ...] = ("n_train",)) -> pd.DataFrame:
    """Per block, cell and teacher: what the teacher knew, and what DCS did with it.

    One row per (block, task, ``by``, teacher) over the DCS runs: ``runs``; the teacher's
    mean dev and training-set scores in points (``teacher_dev``, ``teacher_train``; an
    out-of-fold teacher's training-set score is on logits each example got from the
    teacher that never saw it); and per epoch e, the mean share of training examples on
    which student and teacher disagreed at the end of epoch e (``discordant_e``, %), which
    drives the next epoch's weights, and the effective sample size of the weights the
    student trained on after it (``ess_e``, as a fraction of n; 1 = uniform).
    """
    rows = []
    for r in records:
        if r["method"] != "dcs":
            continue
        metric = metric_of(r)
        teacher = r.get("teacher") or {}
        row = {
            "block": block_of(r),
            "task": r["task"],
            **{key: r["config"].get(key) for key in by},
            "teacher": teacher_label(r),
            "teacher_dev": 100 * (teacher.get("final") or {}).get(metric, np.nan),
            "teacher_train": 100 * (teacher.get("train") or {}).get(metric, np.nan),
        }
        for e in r["epochs"]:
            weights = e.get("weights") or {}
            if "discordant" in weights:
                row[f"discordant_{e['epoch']}"] = 100 * weights["discordant"]
            if "ess" in weights and e["epoch"] < len(r["epochs"]):  # the last epoch's weights train nothing
                row[f"ess_{e['epoch']}"] = weights["ess"]
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    keys = ["block", "task", *by, "teacher"]
    table = frame.groupby(keys, sort=True, dropna=False).agg(runs=("teacher", "size"), **{
        c: (c, "mean") for c in frame.columns if c not in keys
    })
    per_epoch = sorted((c for c in table.columns if "_" in c and c.split("_")[-1].isdigit()),
                       key=lambda c: (int(c.split("_")[-1]), c))
    return table[["runs", "teacher_dev", "teacher_train", *per_epoch]].reset_index()


def plot_when(frame: pd.DataFrame, path: str | Path, column: str = "final") -> tuple[Path, pd.DataFrame]:
    """"When does DCS help": per cell, DCS − vanilla against teacher − vanilla, one point per run pair.

    Returns the figure's path and a table of Spearman's rank correlation per cell,
    descriptive only: points of one seed share a vanilla run, so they are not independent,
    and that shared run alone makes ρ positive; ``rho_shuffled`` and ``share_shuffled_above``
    (:func:`shared_term_rho`) say how large ρ comes out from that and the teachers' levels,
    and ``rho_teacher_dev`` is ρ against the teacher's own dev score, with no shared term.
    Refuses runs of more than one block.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    block = require_one_block(frame)
    pairs = when_frame(frame, column)
    cells = pairs["task"]
    if "n_train" in pairs:  # the training-set size, where the frame was made with it
        size = pairs["n_train"].map(
            lambda n: " (full training set)" if train_size(n) is None else f" ({train_size(n):,} examples)"
        )
        cells = cells + size
    panels = list(dict.fromkeys(cells))
    width = max(6.0, 4.2 * len(panels))  # one panel still leaves room for the title
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(width, 4.2), squeeze=False)
    markers = dict(zip(dict.fromkeys(pairs["teacher"]), "os^Dv<>"))
    correlations = []
    for ax, panel in zip(axes[0], panels):
        group = pairs[cells == panel]
        for teacher, runs in group.groupby("teacher", sort=False):
            ax.plot(runs["teacher_gap"], runs["dcs_gain"], markers[teacher], label=teacher, alpha=0.8)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        rho, shuffled, above, own = np.nan, np.nan, np.nan, np.nan
        if len(group) > 2:
            rho = spearman(group["teacher_gap"], group["dcs_gain"])
            shuffled, above = shared_term_rho(group)
            own = spearman(group["teacher_gap"] + group["vanilla"], group["dcs_gain"])
        correlations.append({"cell": panel, "pairs": len(group), "spearman_rho": round(float(rho), 2),
                             "rho_shuffled": round(shuffled, 2), "share_shuffled_above": round(above, 2),
                             "rho_teacher_dev": round(float(own), 2)})  # fmt: skip
        ax.set(
            xlabel="teacher − vanilla, dev (points)",
            ylabel=f"DCS − vanilla, dev, {'last' if column == 'final' else 'best'} epoch (points)",
            title=f"{panel}: Spearman ρ = {rho:.2f}",
        )
        ax.legend(fontsize=7)
    fig.suptitle(f"When does DCS help? Each point: one seed and teacher\n{block}", fontsize=9)
    return save_figure(fig, path), pd.DataFrame(correlations)


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
    return save_figure(fig, path)


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (no extra dependency), for the README and the terminal."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"

    def cell(column, v):  # a training-set size: "full" where missing, and 4000, not the 4000.0 of a column with NaN
        if column in CELL_KEYS:
            return "full" if train_size(v) is None else str(train_size(v))  # 4000, not 4000.0
        return "" if pd.isna(v) else str(v)

    lines = [
        "| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row)) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([header, rule, *lines])


COMPARISONS = (("dcs", "vanilla"), ("dcs", "kd"), ("kd", "vanilla"))
CELL_KEYS = ("n_train",)


def train_size(n) -> int | None:
    """A cell's training-set size as an int, or None for a full set (NaN in a frame's column)."""
    return None if n is None or pd.isna(n) else int(n)


def comparisons(
    frame: pd.DataFrame, column: str = "final", by: tuple[str, ...] = (), family: list[tuple] | None = None
) -> pd.DataFrame:
    """Every paired comparison the runs allow: DCS - vanilla, DCS - KD and KD - vanilla, per teacher.

    DCS - KD pairs runs with the same teacher. One row per block, task, ``by`` keys,
    teacher and comparison, with :func:`paired_stats`' columns; ``p_holm`` adjusts the
    DCS - vanilla p-values within each block for the size of the family of primary
    comparisons, and the DCS - KD p-values (the reweighting's own test) for theirs, each
    family apart: those ``family`` lists as ``(task, n_train)`` (every teacher of a cell;
    ``n_train`` None for a full training set) or ``(task, n_train, teacher)`` (one
    teacher's row), a protocol's primary comparisons; or every DCS - vanilla (DCS - KD)
    row of the block if ``family`` is None. Rows outside the family get no ``p_holm``. A family of
    ``(task, n_train, teacher)`` items has a known size: members without runs yet count
    as p = 1, so an interim ``p_holm`` is never smaller than the final one. ``reading`` says
    what each row shows, in the protocol's words (:func:`reading`); a row outside both
    families (KD - vanilla, and any the ``family`` leaves out) is marked "descriptive", since
    no test was planned for it.
    """
    by = tuple(dict.fromkeys((*CELL_KEYS, *by)))
    teachers = [t for t in dict.fromkeys(frame["teacher"]) if t]
    tables = []
    for method, baseline in COMPARISONS:
        for teacher in teachers if {method, baseline} & {"kd", "dcs"} else [""]:
            t_method = teacher if method in ("kd", "dcs") else ""
            t_base = teacher if baseline in ("kd", "dcs") else ""
            table = paired_difference(frame, method, baseline, column, by, t_method, t_base)
            if not table.empty:
                table.insert(len(by) + 2, "comparison", f"{method} - {baseline}")
                table.insert(len(by) + 3, "teacher", teacher)
                tables.append(table)
    if not tables:
        return pd.DataFrame()
    result = pd.concat(tables, ignore_index=True)
    primary = result["comparison"].isin(["dcs - vanilla", "dcs - kd"])
    if family is not None:
        if len({len(item) for item in family}) > 1:
            raise DCSError(f"a family is either (task, n_train) cells or (task, n_train, teacher) rows, not both: {family}")
        wanted = {(item[0], train_size(item[1]), *item[2:]) for item in family}
        # not Series.map: it would turn a full set's None back into NaN, which matches nothing
        rows = zip(result["task"], [train_size(n) for n in result["n_train"]], result["teacher"])
        primary &= pd.Series(
            [(task, n) in wanted or (task, n, teacher) in wanted for task, n, teacher in rows], index=result.index
        )
    result["p_holm"] = np.nan
    family_size = len(family) if family is not None and all(len(item) == 3 for item in family) else None
    for _, rows in result[primary].groupby(["block", "comparison"]):
        result.loc[rows.index, "p_holm"] = holm(rows["p_perm"], family_size)
    result["reading"] = result.apply(reading, axis=1)
    # no planned test, so no "gain" or "loss": only what the interval and the unadjusted p say
    unplanned = result.loc[~primary, "reading"].replace(
        {"gain": "interval above 0, unadjusted p", "loss": "interval below 0, unadjusted p"}
    )
    result.loc[~primary, "reading"] = "descriptive: " + unplanned
    return result


def reading(row, level: float = 0.05) -> str:
    """What one paired comparison (a row of :func:`comparisons`) shows, in the study protocol's words.

    A gain or a loss needs the 95% t-interval clear of 0 and the permutation p-value below
    ``level``, Holm-adjusted where the row has ``p_holm``; anything else is "no difference
    detected", with the difference the pairs could have detected (not "no effect"), or, where
    the pairs are too few for the exact sign-flip p ever to fall below ``level``, says so.
    """
    p = row["p_perm"] if pd.isna(row.get("p_holm", np.nan)) else row["p_holm"]
    if p < level and row["ci_low"] > 0:
        return "gain"
    if p < level and row["ci_high"] < 0:
        return "loss"
    n = row.get("n")
    if n is not None and not pd.isna(n) and 2.0 ** (1 - n) >= level:  # its smallest p: 2 of the 2^n sign patterns
        pairs = "1 pair" if int(n) == 1 else f"{int(n)} pairs"
        return f"no difference detected ({pairs}: p cannot fall below {2.0 ** (1 - n):.3g})"
    if pd.isna(row["mde80"]):
        return "no difference detected (no MDE: too few pairs, or no spread)"
    return f"no difference detected (MDE {row['mde80']:.2f})"


def block_header(frame: pd.DataFrame) -> str:
    """One line naming a block's device, precision and versions, for every table and figure."""
    return f"device, precision, torch: {require_one_block(frame)}"


def write_report(
    records: list[dict], out_dir: str | Path, by: tuple[str, ...] = (), family: list[tuple] | None = None
) -> dict[str, Path]:
    """Write runs.csv, summary.csv/.md, paired.csv, teachers.csv and one summary plot per block under ``out_dir``.

    Runs of different blocks (device, precision, torch version) are reported side by
    side, never pooled: each table and figure is for one block and says which.
    ``family``: the primary comparisons for Holm's adjustment (:func:`comparisons`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = runs_frame(records, tuple(dict.fromkeys((*CELL_KEYS, *by))))
    frame.to_csv(out / "runs.csv", index=False)
    table = summary(frame, tuple(dict.fromkeys((*CELL_KEYS, *by))))
    table.to_csv(out / "summary.csv", index=False)
    try:
        paired = pd.concat(
            [comparisons(frame, column, by, family).assign(score=column) for column in ("final", "best")],
            ignore_index=True,
        )
        skipped = ""
    except DCSError as err:  # runs that cannot be paired unambiguously: say why rather than guess
        paired, skipped = pd.DataFrame(), f"\nPaired differences skipped: {err}\n"
    paired.round(6).to_csv(out / "paired.csv", index=False)
    diagnostics = teacher_diagnostics(records, tuple(dict.fromkeys((*CELL_KEYS, *by))))
    diagnostics.to_csv(out / "teachers.csv", index=False)
    sections, plots = [], {}
    for number, (block, runs) in enumerate(frame.groupby("block", sort=False), start=1):
        sections.append(f"## Block {number}: {block_header(runs)}\n")
        sections.append(markdown(table[table["block"] == block].drop(columns="block")))
        for column, words in (("final", "last epoch"), ("best", "best epoch (chosen on dev)")):
            rows = paired[(paired["block"] == block) & (paired["score"] == column)] if not paired.empty else paired
            if not rows.empty:
                sections.append(
                    f"\nPaired differences over seeds ({words}, points): mean, 95% t-interval (n - 1 df), "
                    "exact sign-flip permutation p, Holm-adjusted p over the primary DCS - vanilla rows and, "
                    "apart, over the DCS - KD rows, the difference detectable with 80% power, and what the row "
                    "shows (a gain or loss needs the interval clear of 0 and p < 0.05, Holm-adjusted where given; "
                    "rows outside the Holm families are descriptive):\n"
                )
                sections.append(markdown(rows.drop(columns=["block", "score"]).round(3)))
        rows = diagnostics[diagnostics["block"] == block] if not diagnostics.empty else diagnostics
        if not rows.empty:
            sections.append(
                "\nTeachers (mean over the DCS runs): dev and training-set score (points), the share of "
                "training examples on which student and teacher disagreed at the end of each epoch (%) and "
                "the effective sample size of the weights trained on after it (fraction of n):\n"
            )
            sections.append(markdown(rows.drop(columns="block").round(3)))
        plots[block] = plot_summary(runs, out / f"summary-{number}.png", title=block)
        if not when_frame(runs).dropna(subset=["teacher_gap"]).empty:
            when, rho = plot_when(runs, out / f"when-{number}.png")
            plots[f"{block} (when)"] = when
            sections.append(
                "\nDCS − vanilla against teacher − vanilla (last epoch; " + when.name + "), Spearman's ρ per cell. "
                "Both axes subtract the same vanilla run, which alone makes ρ positive: `rho_shuffled` is the "
                "median ρ with the teachers' dev scores shuffled among the runs of each teacher (the shared run "
                "and each teacher's level kept, the seed-level link broken), `share_shuffled_above` the share "
                "of 2,000 shuffles with ρ at least the observed, `rho_teacher_dev` ρ against the teacher's own "
                "dev score (no shared term); all descriptive:\n"
            )
            sections.append(markdown(rho))
    (out / "summary.md").write_text("\n".join(sections) + "\n" + skipped)
    return {"runs": out / "runs.csv", "summary": out / "summary.md", "plots": plots}
