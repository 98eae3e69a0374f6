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
# # 01 · Knowledge distillation basics
#
#
# Distillation trains a *student* on a *teacher*'s output distribution instead of (or besides) the
# one-hot labels. DCS is built on it, so this notebook takes it apart. You will learn
#
# - what soft labels are, and what the temperature $T$ does to them;
# - why the KD loss is multiplied by $T^2$;
# - how the KL divergence relates to cross-entropy with soft targets;
# - how to write the KD loss in a few lines, and that the library's `kd_kl` computes the same;
# - what KD buys on a small synthetic problem (seconds), and then on RTE with a real teacher and a
#   real student (minutes).
#
#
# **Run time.** Full run: 24.9 min on a 2-core laptop-class CPU; a few minutes on a single GPU (not measured here). With `DCS_SMOKE=1` (tiny subsets and
# short training, what CI runs) it takes about a minute. The outputs below come from one full run of this
# notebook, top to bottom in a fresh kernel, on the real model (the bundled all-MiniLM-L6-v2) and the
# real GLUE files, with seed 42. It was executed with `TQDM_DISABLE=1`, so that no progress bars
# clutter the page, and with torch on one CPU thread (`OMP_NUM_THREADS=1`), because another job kept
# the second core busy; with another thread count or machine the last digits of the training results
# can differ. Every number in the text was read off those outputs.
#
# This run trained the teacher itself (7.5 of the 24.9 minutes). An earlier run of the same notebook,
# with the teacher's logits already cached, took 18.5 minutes and printed the same numbers to the
# last digit.
#
# <!-- constants: 18.5 (the wall time of that earlier run) -->

# %% [markdown]
# **What is the paper's and what is ours.** Knowledge distillation with a temperature and the $T^2$
# factor is Hinton et al. (2015). The DCS paper uses it with the teacher being the same pretrained
# checkpoint fine-tuned on the task, and the loss $\alpha\,\mathrm{CE} + (1-\alpha)\,T^2\,\mathrm{KL}$.
# The values $\alpha = 0.5$, $T = 2$ and a 2-epoch teacher are our reading; notebook 00 lists every
# such choice.
#
# ## Parameters
#
# <!-- constants: 2015 (the year of Hinton et al.) -->

# %%
import os
from pathlib import Path

from dcs_lib.notebook import glue_dir

SMOKE = os.environ.get("DCS_SMOKE") == "1"  # CI: tiny subsets, one short epoch
SEED = 42
N_TRAIN = 64 if SMOKE else None  # None: all 2,490 RTE training examples
N_DEV = 32 if SMOKE else None  # None: all 277 dev examples
EPOCHS = 1 if SMOKE else 3  # student epochs
TEACHER_EPOCHS = 1 if SMOKE else 2
ALPHA, TEMPERATURE = 0.5, 2.0  # KD: weight of CE on the labels, and T

# GLUE files in the glue_data layout: $DCS_GLUE_DIR (a relative path also counts from the project
# root), else a copy beside the project, else None, which makes dcs_lib download the task from the hub.
DATA_DIR = glue_dir()

CACHE_DIR = Path("..") / "runs" / "notebooks" / "cache"  # teacher logits, shared by notebooks 01-03
RESULTS = (Path("..") / "runs" / "notebooks" / "smoke" if SMOKE
           else Path("..") / "data" / "results" / "notebooks") / "01_kd_basics.jsonl"
print(f"SMOKE = {SMOKE}, seed {SEED}, student epochs {EPOCHS}, teacher epochs {TEACHER_EPOCHS}")

# %%
from dcs_lib.notebook import quiet_libraries

quiet_libraries()  # the progress bars and load reports of transformers and datasets would bury the outputs

# %%
# NBVAL_IGNORE_OUTPUT
import torch

from dcs_lib.notebook import show_environment

DEVICE = show_environment(DATA_DIR)  # versions, the device the library picks, where the data comes from

# %% [markdown]
# ## 1. Soft labels and temperature, on a fixed tensor
#
# A classifier outputs logits $z$; softmax turns them into probabilities. With a temperature $T$,
# $p_i = e^{z_i/T} / \sum_j e^{z_j/T}$: $T > 1$ flattens the distribution and shows how the model
# ranks the *wrong* classes, which one-hot labels never say. That ranking is the "dark knowledge" a
# student can learn from.
#
# Here are a teacher's logits for two examples and three classes, softened at $T = 1, 2, 5$.

# %%
# NBVAL_CHECK_OUTPUT
import torch
import torch.nn.functional as F

teacher = torch.tensor([[4.0, 1.0, -2.0],
                        [0.5, 2.5, 0.0]])
student = torch.tensor([[2.0, 2.0, -1.0],
                        [0.0, 1.0, 1.0]])
for T in (1.0, 2.0, 5.0):
    print(f"T = {T}: teacher probabilities", F.softmax(teacher / T, dim=-1).double().numpy().round(4).tolist())


# %% [markdown]
# ## 2. The KD loss, written out
#
# The distillation term is the KL divergence from the teacher's softened distribution to the
# student's, per example:
#
# $$\mathrm{KD}_i = T^2 \sum_c p^T_{\text{teacher},c} \left(\log p^T_{\text{teacher},c} - \log p^T_{\text{student},c}\right)$$
#
# In code, one line per term. It returns one loss per example, shape `(batch,)`, because DCS will
# weight examples later.

# %%
def kd_loss(student_logits, teacher_logits, T):
    """T^2 * KL(teacher || student) on temperature-softened softmaxes.

    student_logits, teacher_logits: (batch, classes) -> (batch,)
    """
    p_teacher = F.softmax(teacher_logits / T, dim=-1)
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=-1)
    return T * T * (p_teacher * (log_p_teacher - log_p_student)).sum(dim=-1)


# %%
# NBVAL_CHECK_OUTPUT
for T in (1.0, 2.0, 5.0):
    print(f"T = {T}: KD loss per example", [round(v, 4) for v in kd_loss(student, teacher, T).tolist()])

# %% [markdown]
# ## 3. Why $T^2$
#
# Softening by $T$ shrinks the gradient of the KL term with respect to the student's logits by about
# $1/T^2$ (for large $T$ the gradient is roughly $(z_s - z_t)/(n T^2)$). Without the factor, raising
# $T$ would quietly turn the distillation term down against the cross-entropy term. Multiplying by
# $T^2$ keeps its size roughly constant, so $T$ changes *what* the student is taught, not *how loudly*.
# The cell below measures the gradient's norm with and without the factor.

# %%
# NBVAL_CHECK_OUTPUT
for T in (1.0, 2.0, 4.0, 8.0):
    z = student.clone().requires_grad_(True)
    (kd_loss(z, teacher, T).sum() / (T * T)).backward()  # KL alone
    without = z.grad.norm().item()
    z.grad = None
    kd_loss(z, teacher, T).sum().backward()  # T^2 * KL
    print(f"T = {T}: gradient norm without T^2 {without:.4f}, with T^2 {z.grad.norm().item():.4f}")

# %% [markdown]
# ## 4. KL or cross-entropy?
#
# Cross-entropy with soft targets, $-\sum_c p_{t,c} \log p_{s,c}$, equals the KL divergence plus the
# teacher's entropy $H(p_t)$. The entropy does not depend on the student, so both losses have the same
# gradients and train the same student; KL is simply zero when the student matches the teacher,
# which makes it easier to read in logs. The cell checks both claims on the fixed tensors.

# %%
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

# %% [markdown]
# ## 5. From our function to the library's
#
# `dcs_lib.losses.kd_kl` is the library's version of `kd_loss` (it also casts to float32 first, which
# matters under mixed precision). `dcs_lib.losses.dcs_loss` combines it with CE and optional
# per-example weights:
# $\sum_i w_i\,(\alpha\,\mathrm{CE}_i + (1-\alpha)\,T^2\,\mathrm{KL}_i) / \sum_i w_i$.
# The next cell is the test that the two KD losses agree (the project's test suite repeats it on the
# function as written in this notebook), and checks two special cases of `dcs_loss`: $\alpha = 1$ is
# plain CE, and $\alpha = 0.5$ with no weights is the mean of half CE and half KD.

# %%
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

# %% [markdown]
# ## 6. A small synthetic problem
#
# Before spending minutes on RTE, the same idea in seconds. Three overlapping Gaussian clouds in the
# plane make a 3-class problem on which even the best classifier errs (the clouds overlap). A
# *teacher* network learns it from 2,000 clean examples. A *student* of the same size gets only 100
# examples, and about a fifth of their labels are wrong, like the noisy, scarce labels of a small GLUE
# task. We train the student twice, with CE on its labels and with KD from the teacher
# ($\alpha = 0.5$, $T = 2$), and measure both on 5,000 fresh examples.
#
# Tiny networks run faster on one CPU thread (the threads cost more than they save), so this section
# uses one and then restores the setting.
#
# <!-- constants: 5,000 (the size of the toy test set, set in the code below) -->

# %%
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


# %%
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

# %% [markdown]
# The decision regions show why: the CE student draws islands around the mislabelled points, while
# the KD student follows the teacher's smooth boundaries, because on each of its 100 points it is
# told the teacher's whole distribution, not one (possibly wrong) class. The dots are the training
# labels each model saw (for the teacher, 300 of its 2,000), coloured by class, noise included.

# %%
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

# %% [markdown]
# ## 7. For real: a teacher on RTE
#
# Now with the bundled MiniLM on RTE. `dcs_lib.methods.prepare_data` loads the task, takes the
# seeded subsets (none in a full run) and tokenises once. `teacher_logits` fine-tunes the teacher with
# plain CE for `TEACHER_EPOCHS` epochs, starting from the pretrained checkpoint (as the paper says),
# then computes its logits on every training example, `(n_train, 2)`. They are cached in memory and
# under `CACHE_DIR`, keyed by everything they depend on (model, seed, data, optimiser settings), so
# notebooks 02 and 03 reuse them. If the cache already holds them, the cell loads them in a second,
# and the record still shows the teacher's training history.

# %%
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

# %%
# NBVAL_IGNORE_OUTPUT
t_logits, t_record = teacher_logits(base, task, data, tokenizer, cache_dir=CACHE_DIR)
print("teacher logits:", tuple(t_logits.shape), "| loaded from the cache" if t_record["cached"] else "| trained now")
for e in t_record["history"]:
    print(f"teacher epoch {e['epoch']}: train loss {e['train_loss']:.4f}, dev accuracy {e['dev']['accuracy']:.4f}")
print(f"teacher accuracy on its own training set: {t_record['train']['accuracy']:.4f}; "
      f"training time {t_record['wall_s'] / 60:.1f} min")

# %% [markdown]
# ## 8. What the teacher's soft labels look like
#
# On real examples the teacher's distribution is what the student will be pulled towards. Below: a
# few training pairs with the gold label and the teacher's probability of *entailment* at $T = 1$ and
# at the distillation temperature $T = 2$, then the distribution of the teacher's confidence over the
# whole training set.

# %%
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

# %%
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


# %% [markdown]
# ## 9. Vanilla fine-tuning against KD, same seed, same budget
#
# Two students, both starting from the pretrained checkpoint with the same seed (so the same random
# head, the same batches, the same dropout draws), for the same number of epochs:
#
# - **vanilla**: CE on the gold labels;
# - **KD**: $\alpha\,\mathrm{CE} + (1-\alpha)\,T^2\,\mathrm{KL}$ to the teacher above, every epoch.
#
# `run` returns a record per run with the dev accuracy after every epoch; we print each epoch as it
# finishes and save the records as JSON lines so that every number here can be reloaded.

# %%
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
RESULTS.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
print("records saved to", RESULTS.relative_to(Path("..")))

# %%
from dcs_lib.report import runs_frame

table = runs_frame(records)[["method", "seed", "best", "best_epoch", "final", "wall_s"]]
teacher_dev = 100 * t_record["final"]["accuracy"]
dev_labels = np.array(data["validation"]["label"])
majority = 100 * max(dev_labels.mean(), 1 - dev_labels.mean())
print(f"RTE dev accuracy in points (teacher: {teacher_dev:.2f}; always the majority class: {majority:.2f})")
table.round(2)

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))
for r in records:
    ax.plot([e["epoch"] for e in r["epochs"]], [100 * e["dev"]["accuracy"] for e in r["epochs"]], "o-", label=r["method"])
ax.axhline(teacher_dev, color="grey", linestyle="--", label="teacher")
ax.set(xlabel="student epoch", ylabel="dev accuracy (points)", title="RTE: vanilla vs KD")
ax.legend()
plt.show()

# %% [markdown]
# ### What happened
#
#
# - **The teacher is weak and unsure.** After two epochs it scores 52.35, then 55.96 on dev, against
#   52.71 for always answering the majority class; on its own training set it gets 66.27% and
#   contradicts the gold label on 33.7% of it. Its confidence never gets far from a coin flip: the
#   median probability of its predicted class is 0.543 at $T = 1$, and at $T = 2$ (0.521) its soft
#   labels are close to uniform.
# - **Vanilla** goes 49.82, 58.48, 54.87 over the three epochs; **KD** goes 49.82, 57.40, 55.60. At
#   the last epoch KD is 0.72 points ahead (two dev examples out of 277); at the best epoch vanilla is
#   1.08 points ahead (three examples). Differences of a few examples are well within the seed-to-seed
#   spread that small tasks like RTE are known for, so this run shows neither that KD helps here nor
#   that it hurts.
# - The training losses are not comparable across the two: KD's includes the KL term, which is small
#   because the teacher's targets are nearly flat.
#
# Why so little, when KD did so much on the synthetic problem? There the teacher was far better than
# the labels (0.854 against 0.696 for a student on the noisy labels). Here the teacher is barely
# better than guessing, and with targets that flat the KD term acts mostly like label smoothing: it
# keeps the student from becoming confident, but it carries little information about which answer is
# right. A teacher trained longer, or a larger model, would give KD more to pass on.
#
#
# <!-- derived: 0.72 = 55.60 - 54.87 -->

# %% [markdown]
# ## Summary
#
# - Temperature softens a distribution and exposes how a model ranks the wrong classes; the $T^2$
#   factor keeps the distillation gradient the same size whatever $T$.
# - KL to the teacher and cross-entropy with soft targets differ by a constant and train alike.
# - `kd_loss` written here and `dcs_lib.losses.kd_kl` agree; `dcs_loss` adds the CE term and the
#   per-example weights that DCS needs.
# - On a noisy synthetic problem, KD lets a student with few, noisy labels approach its teacher.
#   On RTE the 2-epoch teacher reaches 55.96 on dev with nearly uniform soft labels; the KD student
#   ends at 55.60 against vanilla's 54.87 (best epochs: 57.40 and 58.48), a difference of two or three
#   dev examples either way: too small to call with one seed.
#
# ## Exercises
#
# 1. On the fixed tensors, at what temperature does the teacher's first example give its top class
#    less than 50%? Explain with the formula why very high $T$ makes any distribution uniform.
# 2. In the synthetic problem, train the KD student with $\alpha = 0$ (teacher only) and
#    $\alpha = 1$ (labels only). Which is better here, and why?
# 3. Look at the RTE examples where the teacher disagrees with the gold label. Are they label noise,
#    or teacher mistakes? What would KD do with each?

# %% [markdown]
# ## Solutions

# %%
# 1. Probability of the top class of the first example as T grows: it falls towards 1/3.
for T in (1.0, 2.0, 4.0, 6.0, 8.0):
    print(f"T = {T}: {F.softmax(teacher[0] / T, -1).max().item():.3f}")
# It drops below one half between T = 6 and T = 8. z / T -> 0 as T grows, and softmax of zeros is uniform.

# %%
# 2. alpha = 0 (teacher only) and alpha = 1 (the noisy labels only, = the CE student).
torch.set_num_threads(1)
for a in (0.0, 1.0):
    torch.manual_seed(0)
    m = train_toy(mlp(), x_small, lambda z: dcs_loss(z, y_noisy, toy_teacher_logits, alpha=a, temperature=2.0))
    print(f"alpha = {a}: test accuracy {toy_accuracy(m, x_test, y_test):.3f}")
torch.set_num_threads(threads)
# Here the teacher knows much more than the noisy labels, so leaning on it fully does well. On RTE
# the teacher is far from perfect, which is why DCS keeps a CE term on the gold labels.

# %%
# 3. The training pairs where the teacher contradicts the gold label.
wrong = torch.nonzero(~teacher_right)[:5, 0].tolist()
pd.DataFrame([{"premise": raw_train[i]["sentence1"], "hypothesis": raw_train[i]["sentence2"],
               "gold": task.label_names[raw_train[i]["label"]], "p(entail)": round(p1[i].item(), 3)} for i in wrong])
# On these pairs KD pulls the student towards the teacher's answer and CE towards the gold label;
# with alpha = 0.5 they pull against each other. DCS (notebook 02) raises the weight of such an
# example whenever the student sides with the label against the teacher.
