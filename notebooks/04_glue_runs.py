# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · GLUE runs: does DCS beat vanilla fine-tuning?
#
#
# The paper's headline claim, tested under one protocol: DCS against vanilla fine-tuning, plain KD and
# teacher-free reweighting, on RTE, MRPC, CoLA and a 2,000-example SST-2, five seeds each, with the
# bundled MiniLM. You will learn
#
# - how the learning rate and the number of epochs were chosen without looking at the dev sets;
# - how to read a results file: mean, spread and median over seeds, at the best and at the last epoch;
# - why paired per-seed differences with a bootstrap interval are the fair way to compare methods;
# - what our numbers say about the paper's claim, and what they cannot say.
#
#
# **Run time.** Full run: 0.9 min on a 2-core laptop-class CPU; it trains only a toy grid, so a GPU changes little. With `DCS_SMOKE=1` (tiny subsets and
# short training, what CI runs) it takes about a minute. The outputs below come from one full run of this
# notebook, top to bottom in a fresh kernel, on the 2-core CPU, with `TQDM_DISABLE=1`. Every number in
# the text was read off those outputs.
#
# The GLUE runs themselves are not repeated here: they took GPU time, so the notebook loads their
# raw records from `data/results/glue/runs.jsonl`, produced from the grid file committed next to them:
# most by `scripts/study.py` on one NVIDIA H200 (bf16 autocast, twelve runs sharing the GPU at a
# time), the rest by `python -m dcs_lib grid` on a 2-core CPU (float32). Every record names its
# device, and the tables below count runs per device.
# The only training in this notebook is a two-run grid on a few examples that shows the mechanics.

# %% [markdown]
# ## What is the paper's and what is ours
#
# The table of every piece, the paper's and ours, is in notebook 00 ([00_setup](00_setup.ipynb),
# "The course"); `dcs_lib.notebook.paper_vs_ours()` shows it in any notebook. Every "our reading" is
# an option of `dcs_lib.methods.RunConfig`, so you can change it.

# %% [markdown]
# ## Parameters
#
# The notebook reads committed results; the parameters only size the small demonstration grid at the
# end.

# %%
import os
from pathlib import Path

from dcs_lib.notebook import glue_dir

SMOKE = os.environ.get("DCS_SMOKE") == "1"  # CI: the demonstration grid on fewer examples
DEMO_N_TRAIN = 32 if SMOKE else 128  # training examples in the demonstration grid
DEMO_EPOCHS = 2

# GLUE files in the glue_data layout: $DCS_GLUE_DIR (a relative path also counts from the project
# root), else a copy beside the project, else None, which makes dcs_lib download the task from the hub.
DATA_DIR = glue_dir()

DEMO_DIR = Path("..") / "runs" / "notebooks" / ("04-smoke" if SMOKE else "04")
print(f"SMOKE = {SMOKE}, demonstration grid: {DEMO_N_TRAIN} RTE examples, {DEMO_EPOCHS} epochs")

# %%
from dcs_lib.notebook import quiet_libraries

quiet_libraries()  # the progress bars and load reports of transformers and datasets would bury the outputs

# %%
# NBVAL_IGNORE_OUTPUT
import torch

from dcs_lib.notebook import show_environment

DEVICE = show_environment(DATA_DIR)  # versions, the device the library picks, where the data comes from

# %% [markdown]
# ## 1. The protocol, fixed before any dev score was seen
#
# Every run uses the same settings: the bundled MiniLM, batch size 32, inputs cut at 128 tokens,
# AdamW (weight decay 0.01), 10% warm-up then linear decay, a 2-epoch teacher, $\alpha = 0.5$,
# $T = 2$, $\lambda = 1$, seeds 1 to 5, and the same seed gives every method the same classification
# head and the same batches. The score is the task's GLUE metric on the full dev set: accuracy for
# RTE and SST-2, F1 for MRPC, Matthews correlation for CoLA.
#
# Two settings were left open: the learning rate and the number of student epochs. They were chosen
# once, on RTE alone, with 500 training examples held out as a stand-in dev set (`holdout=500`; the
# same 500 for every seed), by a rule written down before the tuning runs: average the holdout
# accuracy at each (learning rate, epoch) over vanilla and DCS and two seeds, take the best with at
# least 3 epochs (so that DCS updates its weights at least twice), and on a tie prefer fewer epochs,
# then the smaller rate (`dcs_lib.report.choose_schedule`). One 5-epoch run gives the whole curve, so
# 12 runs cover 3 rates x 5 epoch counts; the curve is only an approximation of shorter runs, whose
# learning rate would decay sooner.

# %%
from dcs_lib.experiments import load_results, read_grid
from dcs_lib.notebook import committed_results

RESULTS = Path("..") / "data" / "results"
# the grid's records (each checked to come from the committed grid file), the grid, its [base]
# settings, and the runs repeated on a CPU in float32 to see what the device alone does
glue_records, grid_configs, grid_base, cpu_repeats = committed_results(RESULTS)

# %%
from dcs_lib.report import choose_schedule, epoch_scores

tuning = load_results(RESULTS / "tuning" / "runs.jsonl")
choice = choose_schedule(tuning)
print(f"{len(tuning)} tuning runs; holdout accuracy (points), mean over vanilla and DCS, seeds 1-2:")
display(choice["table"])
print(f"chosen: lr {choice['lr']:g}, {choice['epochs']} epochs (mean {choice['score']:.2f})")
assert (choice["lr"], choice["epochs"]) == (grid_base["lr"], grid_base["epochs"]), "grid file disagrees with the rule"

# %% [markdown]
#
# The rule picks a learning rate of 5e-5 and 5 epochs: 61.20 points on the holdout, the highest cell
# with at least 3 epochs. 5e-5 is ahead of the other two rates from epoch 4 on, but the curve is still
# rising at epoch 5, the longest schedule tried, so a longer one might have done better; the grid
# did not look further. Note what the rule did *not* choose: the teacher keeps its 2 epochs (our
# reading of "a few epochs"), so in the GLUE runs the student trains for 5 epochs and its teacher for
# 2. Section 3 comes back to this.
#
# The next cell reruns two of the tuning runs' numbers on a different device: the same two vanilla
# runs, once on this CPU in float32 and once on the GPU with bf16 autocast. They agree to within about
# one point after the last epoch (61.0 against 60.8, 60.0 against 60.4), but single epochs differ by up
# to 2.6 points: rounding differences compound over thousands of steps. That is the scale of noise a
# single run carries before any seed changes.
#

# %%
# The same two vanilla runs on this CPU (float32) and on the GPU (bf16): how much does the device move a run?
cpu_runs = load_results(RESULTS / "tuning" / "cpu-runs.jsonl")
curves = epoch_scores(tuning + cpu_runs, by=("lr",))
curves["device"] = ["cpu" if i >= len(epoch_scores(tuning)) else "gpu" for i in range(len(curves))]
same = curves[(curves.method == "vanilla") & (curves.lr == 5e-5) & curves.seed.isin([r["seed"] for r in cpu_runs])]
display(same.pivot_table(index=["seed", "device"], columns="epoch", values="score").round(1))

# %% [markdown]
# ## 2. The table
#
# Below, the runs of the protocol proper (the grid file also holds the ablations of notebook 05). The
# first table counts them, so that a missing cell is visible rather than silently averaged over.

# %%
import pandas as pd

from dcs_lib.report import changed_settings, paired_difference, runs_frame, summary

protocol = [r for r in glue_records
            if not changed_settings(r) and r["config"]["n_train"] in (None, 2000) and r["seed"] in range(1, 6)]
frame = runs_frame(protocol)
counts = frame.pivot_table(index=["task", "device"], columns="method", values="seed", aggfunc="count", fill_value=0)
display(counts.reindex(columns=["vanilla", "kd", "reweight", "dcs"], fill_value=0))

# %%
table = summary(frame)
display(table)

# %% [markdown]
# Mean and standard deviation over seeds, at the **best** epoch (the highest dev score over the
# epochs: what most papers report, and optimistic, since it picks the epoch on the dev set) and at the
# **last** epoch (what you get without peeking). Points: metric x 100.
#
# A difference between two means is only meaningful against the seed-to-seed spread. Since every
# method sees the same seeds, the fairer comparison is **paired**: for each seed, DCS minus vanilla,
# then the mean of those differences with a bootstrap 95% interval (10,000 resamples of the seeds).
# An interval that contains 0 means these runs cannot tell the two methods apart.
#
# <!-- constants: 10,000 (the bootstrap's resamples, dcs_lib.report) -->

# %%
rows = []
for method in ("dcs", "kd", "reweight"):
    for column in ("best", "final"):
        diff = paired_difference(frame, method=method, column=column)
        rows.append(diff.assign(comparison=f"{method} - vanilla", epoch=column))
paired = pd.concat(rows, ignore_index=True)[["comparison", "epoch", "task", "n", "mean_diff", "ci_low", "ci_high"]]
display(paired[paired.comparison == "dcs - vanilla"])

# %% [markdown]
# ### Beside the paper
#
# The paper fine-tunes BERT-base (110M parameters, 12 layers); here the student and the teacher are
# all-MiniLM-L6-v2 (22.7M parameters, 6 layers, trained for sentence embeddings), so the absolute
# scores are not comparable and are not shown side by side. What can be compared is the claim: the
# gain of DCS over vanilla fine-tuning. The paper reports +2.56 points on RTE, +2.34 on MRPC and over
# 2 points on average over GLUE; the table puts our paired differences next to those.

# %%
paper = {"rte": 2.56, "mrpc": 2.34}  # DCS - vanilla in the paper (BERT-base), points
ours = paired[(paired.comparison == "dcs - vanilla")].pivot_table(index="task", columns="epoch", values="mean_diff")
ours["paper (BERT-base)"] = [paper.get(task) for task in ours.index]
ours.columns = ["ours, best epoch (MiniLM)", "ours, last epoch (MiniLM)", "paper (BERT-base)"]
display(ours)
print("average over tasks with 5 pairs:",
      paired[(paired.comparison == "dcs - vanilla") & (paired.n == 5)].groupby("epoch").mean_diff.mean().round(2).to_dict())

# %% [markdown]
# ### Seed by seed
#
# Each dot is one seed: vanilla's score across, DCS's up. Above the diagonal, DCS won that seed. The
# right panel shows every paired difference with its bootstrap interval.

# %%
import matplotlib.pyplot as plt
import numpy as np

tasks = [t for t in ("rte", "mrpc", "cola", "sst2") if t in set(frame.task)]
fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(3.1 * (len(tasks) + 1), 3.2))
for ax, task in zip(axes, tasks):
    pivot = frame[frame.task == task].pivot_table(index="seed", columns="method", values=["best", "final"])
    for column, marker in (("best", "o"), ("final", "s")):
        if ("dcs" in pivot[column]) and ("vanilla" in pivot[column]):
            ax.plot(pivot[column]["vanilla"], pivot[column]["dcs"], marker, ls="", label=f"{column} epoch", alpha=0.8)
    low, high = ax.get_xlim()[0], ax.get_xlim()[1]
    low, high = min(low, ax.get_ylim()[0]), max(high, ax.get_ylim()[1])
    ax.plot([low, high], [low, high], color="grey", lw=0.8)
    ax.set(title=f"{task} ({frame[frame.task == task].metric.iloc[0]})", xlabel="vanilla", ylabel="DCS")
axes[0].legend(fontsize=8)
ax = axes[-1]
shown = paired[paired.n > 1]
labels = [f"{r.task} {r.comparison.split()[0]} {r.epoch}" for r in shown.itertuples()]
y = np.arange(len(shown))
ax.errorbar(shown.mean_diff, y, xerr=[shown.mean_diff - shown.ci_low, shown.ci_high - shown.mean_diff], fmt="o", ms=3)
ax.axvline(0, color="grey", lw=0.8)
ax.set_yticks(y, labels, fontsize=6)
ax.set(title="method - vanilla, 95% CI", xlabel="points")
fig.tight_layout()

# %% [markdown]
# ### Epoch by epoch
#
# Mean dev score over the seeds after each epoch. The best-epoch column above picks the top of each
# run's curve; the last-epoch column reads its end.

# %%
curves = epoch_scores(protocol, by=())
fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.0))
for ax, task in zip(np.atleast_1d(axes), tasks):
    mean = curves[curves.task == task].groupby(["method", "epoch"]).score.mean().unstack("method")
    for method in [m for m in ("vanilla", "kd", "reweight", "dcs") if m in mean]:
        ax.plot(mean.index, mean[method], "o-", ms=3, label=method)
    ax.set(title=task, xlabel="epoch", ylabel="dev score (points)")
np.atleast_1d(axes)[0].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ### The teacher, and what DCS did with it
#
# DCS can only correct the student towards something the teacher knows. The records keep the
# teacher's dev score and, for every epoch, the statistics of DCS's weights: the share of training
# examples on which student and teacher disagreed, and the effective sample size (ESS: 1 when all
# weights are equal, smaller as the weight piles up on fewer examples).

# %%
teacher = pd.DataFrame([{"task": r["task"], "teacher (2 epochs)": 100 * r["teacher"]["final"][r["metric"]]}
                        for r in protocol if r["method"] == "dcs"]).groupby("task").mean()
teacher["vanilla, best"] = frame[frame.method == "vanilla"].groupby("task").best.mean()
teacher["dcs, best"] = frame[frame.method == "dcs"].groupby("task").best.mean()
display(teacher.round(2))
weights = pd.DataFrame([{"task": r["task"], "epoch": e["epoch"], **e["weights"]}
                        for r in protocol if r["method"] == "dcs" for e in r["epochs"] if "weights" in e])
display(weights.groupby(["task", "epoch"])[["discordant", "ess", "max"]].mean().unstack("epoch").round(2))

# %% [markdown]
# ### CoLA's reweighting ran on the CPU
#
# CoLA's other runs ran on the GPU in bf16, its reweighting runs on a 2-core CPU in float32. So that
# they are not compared with runs from another device only, vanilla's CoLA runs for seeds 1-3 were
# repeated on the CPU (`data/results/glue/cpu-repeats.jsonl`, from the grid file with `--only
# task=cola --only method=vanilla --only seed=1,2,3`).

# %%
cola = runs_frame([r for r in protocol if r["task"] == "cola" and r["method"] in ("vanilla", "reweight")]
                  + [r for r in cpu_repeats if r["task"] == "cola"])
cola["device"] = cola.device.str.split(" ").str[0]  # "cuda (NVIDIA H200)" -> "cuda"
by_device = cola.pivot_table(index="seed", columns=["method", "device"], values=["best", "final"])
by_device.loc["mean, seeds 1-3"] = by_device.loc[[1, 2, 3]].mean()
display(by_device.round(2))

# %% [markdown]
# ## 3. Discussion
#
#
# **DCS does not beat vanilla fine-tuning in these runs.** With five seeds per task, DCS - vanilla at
# the best epoch is -0.72 points on RTE (95% interval -1.73 to +0.72), -0.19 on MRPC (-0.93 to
# +0.57), -2.31 on CoLA (-4.25 to -0.46) and -0.69 on the 2,000-example SST-2 (-1.26 to -0.37); at
# the last epoch -0.14, +0.21, -2.74 and -0.83. On RTE and MRPC the intervals contain 0: these runs
# cannot tell DCS from vanilla there, and they exclude the paper's +2.56 and +2.34 (the upper ends are
# +0.72 and +0.57 at the best epoch, +1.88 and +1.03 at the last). On CoLA and SST-2 DCS is worse, and
# the intervals exclude 0. Averaged over the four tasks, the difference is -0.98 points at the best
# epoch and -0.88 at the last, against the paper's "over 2 points" on average.
#
# **Neither ingredient helps on its own either.** KD (the teacher's soft labels, uniform weights)
# trails vanilla on RTE at the best epoch by 1.37 points, on CoLA by 1.32 and on SST-2 by 0.94 (the
# means in the table above). Reweighting against the gold labels without a teacher is the
# weakest method on RTE (56.10 best, 54.37 last), level with vanilla on MRPC, and the only method
# level with vanilla on SST-2 (+0.23 at the best epoch, -0.30 at the last). On CoLA it has the best
# mean of the four (31.00 best, 28.62 last), but that is the device: it ran on the CPU, and CoLA's
# vanilla runs repeated there (seeds 1-3, the table above) score 31.98 at the best epoch and 30.92 at
# the last, against 28.78 and 28.63 on the GPU. Against vanilla on its own device, reweighting is
# level at the best epoch (31.97 on the same seeds) and 2.5 points behind at the last (28.39).
#
# **Why, most likely: the teacher is weaker than the student it teaches.** After its 2 epochs the
# teacher scores 56.75 on RTE, 84.74 F1 on MRPC, 23.11 MCC on CoLA and 80.11 on SST-2, below the
# vanilla student's best epoch on every task (59.28, 86.57, 28.46, 83.23). The protocol gives the
# student 5 epochs (chosen on the holdout) and keeps the teacher at 2, so by the end the student is
# distilling from, and being reweighted by, a model worse than itself. The weights show it too: by the
# last update 23% to 26% of RTE's training examples are discordant, the mean ESS is down to 0.23-0.32
# on every task, and on MRPC, CoLA and SST-2 the largest weight is at or near the clip limit of 10 from
# epoch 3 on. A quarter of the data carries most of the loss, chosen by disagreement with a weaker model. In
# the paper the teacher is BERT-base fine-tuned on the task; here it is a 6-layer sentence-embedding
# model trained briefly. Notebook 05's SST-2 size sweep points the same way: DCS falls furthest behind
# where its teacher is worst, and pulls ahead only at 4,000 examples, where the teacher comes close.
#
# **What this does and does not show.** It shows that, with a small encoder, a teacher trained for 2
# epochs and our reading of the update (`step="fixed"`, $\lambda = 1$, accumulated, clipped to
# $[0.1, 10]$), DCS gives no gain over careful vanilla fine-tuning on RTE and MRPC and loses on CoLA
# and SST-2. It does not test DCS with BERT-base, with a teacher trained as long as the student, or
# with other readings of the update; notebook 05's ablations start on the last two. The SST-2 runs
# of seeds 2-5, SST-2 seed 1's reweighting and CoLA's reweighting ran on the CPU in float32, the rest
# on the GPU in bf16; every paired DCS - vanilla difference compares two runs on one device. The
# device matters: notebook 05 repeats MRPC's default DCS and vanilla runs on the CPU, and there
# DCS - vanilla is -0.34 (seeds 1-3) where the GPU gave +0.90. Read the intervals above as "no gain
# shown on this setup", not as a precise loss.
#
#
# <!-- from 05_ablations: 4,000 0.90 -->
#
# <!-- derived: 1.37 = 59.28 - 57.91; 1.32 = 28.46 - 27.15; 0.94 = 83.23 - 82.29; 0.30 = 83.19 - 82.89 -->

# %% [markdown]
# ## 4. The mechanics: a grid of two runs
#
# The table above came from one command, `python -m dcs_lib grid data/results/glue/grid.toml --results
# data/results/glue/runs.jsonl` (split across processes by `scripts/study.py`). The same mechanics at
# toy size: a grid file with two runs, run into a results file, then the same report. Running the
# cell again skips both runs: they are already in the file.

# %%
# NBVAL_IGNORE_OUTPUT
from dcs_lib.experiments import run_grid
from dcs_lib.report import write_report

DEMO_DIR.mkdir(parents=True, exist_ok=True)
demo_grid = DEMO_DIR / "grid.toml"
demo_grid.write_text(f'''
[base]
task = "rte"
n_train = {DEMO_N_TRAIN}
n_dev = 64
epochs = {DEMO_EPOCHS}
teacher_epochs = 1
seed = 1

[[grid]]
method = ["vanilla", "dcs"]
''')
demo_results = DEMO_DIR / "runs.jsonl"
run_grid(read_grid(demo_grid), demo_results, data_dir=DATA_DIR, progress=False, cache_dir=DEMO_DIR / "cache")

# %%
demo = load_results(demo_results)
print([(r["method"], r["seed"], len(r["epochs"])) for r in demo])
display(summary(runs_frame(demo)))


# %% [markdown]
# ## Summary
#
# - The protocol was fixed on an RTE holdout before any dev score was seen: learning rate 5e-5,
#   5 student epochs, batch 32, max length 128, a 2-epoch teacher, seeds 1-5.
# - On RTE, MRPC, CoLA and SST-2 (2,000 examples; five seeds, all four methods), DCS - vanilla is
#   -0.72, -0.19, -2.31 and -0.69 points at the best epoch, -0.14, +0.21, -2.74 and -0.83 at the
#   last: no gain on RTE and MRPC (intervals contain 0 and exclude the paper's +2.56 and +2.34), a
#   loss on CoLA and SST-2.
# - The device moves scores: CoLA's vanilla runs score 3.2 points higher at the best epoch (2.3 at
#   the last) in float32 on a CPU than in bf16 on the GPU. Compared on one device, reweighting is
#   level with vanilla on CoLA, not ahead; every DCS - vanilla pair above ran on one device.
# - The 2-epoch teacher scores below the 5-epoch vanilla student on every task; DCS concentrates its
#   weight (mean ESS 0.23-0.32) on examples chosen by disagreement with that weaker model.
# - Paired per-seed differences with bootstrap intervals are the honest way to compare methods on
#   small tasks; with a seed-to-seed spread of about 2 points on RTE, five seeds detect only large
#   effects.
#
# ## Exercises
#
# 1. The table uses the best and the last epoch. Compute a third column: the score at the epoch with
#    the best *training* loss, which needs no dev set. Does the ranking of the methods change?
# 2. How many seeds would it take to detect a true DCS gain of 1 point on RTE with these spreads?
#    Simulate it: draw paired differences with mean 1 and the standard deviation of ours, and count
#    how often the bootstrap interval excludes 0, for 5, 10 and 20 seeds.
# 3. Put exercise 2 to the test: copy the grid file to `runs/more.toml`, give its first block
#    `seed = [6, 7, 8, 9, 10]`, and run only those seeds on RTE (from the project folder; a few
#    hours on a CPU, minutes on a GPU): `python -m dcs_lib grid runs/more.toml --results
#    runs/more.jsonl --only task=rte --only seed=6,7,8,9,10`. With ten pairs instead of five (the
#    new records and the committed ones together), how wide is RTE's interval for DCS - vanilla?
#
# ## Solutions

# %%
# 1. The epoch with the lowest training loss (no dev set needed).
def at_lowest_train_loss(record):
    epoch = min(record["epochs"], key=lambda e: e["train_loss"])
    return 100 * epoch["dev"][record["metric"]]

picks = pd.DataFrame([{"task": r["task"], "method": r["method"], "score": at_lowest_train_loss(r)} for r in protocol])
display(picks.groupby(["task", "method"]).score.mean().unstack().round(2))

# %%
# 2. Power of a paired comparison with n seeds, by simulation.
rng = np.random.default_rng(0)
spread = frame[frame.task == "rte"].pivot_table(index="seed", columns="method", values="final")
sd = (spread["dcs"] - spread["vanilla"]).std()
for n in (5, 10, 20):
    hits = 0
    for _ in range(1000):
        diff = rng.normal(1.0, sd, n)
        boot = rng.choice(diff, size=(1000, n)).mean(axis=1)
        hits += np.percentile(boot, 2.5) > 0
    print(f"{n:2d} seeds: the interval excludes 0 in {hits / 1000:.0%} of simulated studies (sd {sd:.2f})")
