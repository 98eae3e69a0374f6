"""The whole DCS cycle on synthetic data, in seconds: a toy to see where reweighting helps and hurts.

Self-distillation as the paper means it: teacher and student are the same small
network, trained on the *same* noisy training set; the teacher is simply trained
for a number of epochs first. Then the student runs the DCS loop with the library's
own pieces (:func:`dcs_lib.losses.dcs_loss`, :func:`dcs_lib.weighting.update_weights`):
one plain epoch, then each epoch a disagreement flag per example, new weights, and
the weighted ``alpha * CE + (1 - alpha) * T^2 * KL`` loss.

Sweeping the teacher's training (0 epochs: an untrained teacher; many: a teacher
that has memorised the noisy labels) sweeps its quality; :func:`sweep` runs vanilla,
KD and DCS students for each teacher over several seeds, and :func:`plot_sweep`
draws accuracy gain against teacher accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import losses, weighting


@dataclass
class ToyConfig:
    n_train: int = 300
    n_test: int = 3000
    dims: int = 10
    label_noise: float = 0.2  # share of training labels flipped; the test set is clean
    hidden: int = 64
    batch_size: int = 30
    lr: float = 1e-2
    epochs: int = 6  # student epochs, the first one plain
    alpha: float = 0.5
    temperature: float = 2.0
    lam: float = 1.0
    weight_norm: str = "batch"  # as RunConfig's: "batch" divides a batch's loss by its weight sum, "mean" by its size


def make_data(cfg: ToyConfig, seed: int = 0):
    """Two classes separated by a curved boundary -> (x_train, y_train, x_test, y_test).

    x: (n, dims) float32; y: (n,) int64. A share ``label_noise`` of the training labels
    is flipped, so a model that fits the training set perfectly has memorised noise.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg.n_train + cfg.n_test, cfg.dims, generator=gen)
    y = ((x[:, 0] + 0.5 * x[:, 1] ** 2 - 0.5 + 0.3 * x[:, 2] * x[:, 3]) > 0).long()
    flip = torch.rand(cfg.n_train, generator=gen) < cfg.label_noise
    y_train = torch.where(flip, 1 - y[: cfg.n_train], y[: cfg.n_train])
    return x[: cfg.n_train], y_train, x[cfg.n_train :], y[cfg.n_train :]


def make_model(cfg: ToyConfig, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(cfg.dims, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2))


def _batches(n: int, batch_size: int, gen: torch.Generator):
    order = torch.randperm(n, generator=gen)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def train(model, x, y, cfg: ToyConfig, epochs: int, seed: int, teacher=None, weights_log=None) -> nn.Module:
    """Train ``model`` in place: plain CE, or, with ``teacher`` logits (n, 2), the DCS loop.

    With a teacher, epoch 1 is plain CE and every later epoch uses the weights from
    the disagreement after the epoch before; ``lam = 0`` is KD. Per-epoch weight
    statistics are appended to ``weights_log`` if given.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    w = torch.ones(len(x))
    for epoch in range(1, epochs + 1):
        model.train()
        for rows in _batches(len(x), cfg.batch_size, gen):
            logits = model(x[rows])
            if teacher is None or epoch == 1:
                loss = losses.weighted_mean(losses.cross_entropy(logits, y[rows]))
            else:
                loss = losses.dcs_loss(
                    logits, y[rows], teacher[rows], w[rows], cfg.alpha, cfg.temperature, norm=cfg.weight_norm
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if teacher is not None and epoch < epochs:
            with torch.no_grad():
                model.eval()
                disagree = weighting.disagreement(model(x), teacher)
            w = weighting.update_weights(w, disagree, lam=cfg.lam)
            if weights_log is not None:
                weights_log.append(weighting.weight_stats(w, disagree))
    return model


@torch.no_grad()
def accuracy(model, x, y) -> float:
    model.eval()
    return float((model(x).argmax(-1) == y).float().mean())


def out_of_fold_logits(x, y, cfg: ToyConfig, epochs: int, seed: int, folds: int = 2) -> torch.Tensor:
    """Teacher logits (n, 2) where each row comes from a teacher trained on the other folds only."""
    fold = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)) % folds
    logits = torch.zeros(len(x), 2)
    for k in range(folds):
        teacher = train(make_model(cfg, seed), x[fold != k], y[fold != k], cfg, epochs, seed)
        with torch.no_grad():
            logits[fold == k] = teacher.eval()(x[fold == k])
    return logits


def sweep(cfg: ToyConfig | None = None, teacher_epochs=(1, 4, 16, 64), seeds=range(3), out_of_fold: bool = False):
    """For each seed and teacher budget: the teacher's and the three students' clean test accuracy.

    Returns a list of dicts (seed, teacher_epochs, teacher, teacher_train, vanilla, kd,
    dcs, discordant): accuracies in [0, 1]; ``discordant`` is the share of examples
    where the DCS student disagreed with the teacher after its plain epoch. With
    ``out_of_fold`` the students learn from out-of-fold logits
    (:func:`out_of_fold_logits`) instead of the teacher's own training-set logits;
    ``teacher`` is still the test accuracy of the teacher trained on everything.
    """
    cfg = cfg or ToyConfig()
    rows = []
    for seed in seeds:
        x, y, x_test, y_test = make_data(cfg, seed)
        # every student starts from the same initialisation (seed + 1000), the teacher from another
        vanilla = accuracy(train(make_model(cfg, seed + 1000), x, y, cfg, cfg.epochs, seed), x_test, y_test)
        for budget in teacher_epochs:
            teacher = train(make_model(cfg, seed), x, y, cfg, budget, seed) if budget else make_model(cfg, seed)
            with torch.no_grad():
                teacher_logits = teacher.eval()(x)
            if out_of_fold:
                teacher_logits = out_of_fold_logits(x, y, cfg, budget, seed)
            scores = {}
            for name, lam in (("kd", 0.0), ("dcs", cfg.lam)):
                log: list[dict] = []
                student = train(
                    make_model(cfg, seed + 1000), x, y, _with(cfg, lam=lam), cfg.epochs, seed, teacher_logits, log
                )
                scores[name] = accuracy(student, x_test, y_test)
                if name == "dcs":
                    discordant = log[0]["discordant"]
            rows.append(
                {
                    "seed": seed,
                    "teacher_epochs": budget,
                    "teacher": accuracy(teacher, x_test, y_test),
                    "teacher_train": accuracy(teacher, x, y),
                    "vanilla": vanilla,
                    **scores,
                    "discordant": discordant,
                }
            )
    return rows


def _with(cfg: ToyConfig, **changes) -> ToyConfig:
    return ToyConfig(**{**cfg.__dict__, **changes})


def gains(rows):
    """Mean over seeds per teacher budget, in points: teacher accuracy, DCS − vanilla, KD − vanilla, DCS − KD."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    table = pd.DataFrame(
        {
            "teacher_epochs": frame["teacher_epochs"],
            "teacher": 100 * frame["teacher"],
            "teacher_train": 100 * frame["teacher_train"],
            "dcs - vanilla": 100 * (frame["dcs"] - frame["vanilla"]),
            "kd - vanilla": 100 * (frame["kd"] - frame["vanilla"]),
            "dcs - kd": 100 * (frame["dcs"] - frame["kd"]),
            "discordant": 100 * frame["discordant"],
        }
    )
    return table.groupby("teacher_epochs").mean().round(2)


def plot_sweep(panels: dict, path=None):
    """One panel per teacher kind (e.g. {"teacher's own logits": rows, "out-of-fold": rows}).

    Each panel: DCS − vanilla, KD − vanilla and DCS − KD (the reweighting's own share)
    against the teacher's training budget, means over seeds, with the zero line.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), sharey=True, squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels.items()):
        table = gains(rows)
        x = range(len(table))
        ax.plot(x, table["dcs - vanilla"], "o-", label="DCS − vanilla")
        ax.plot(x, table["kd - vanilla"], "s--", label="KD − vanilla")
        ax.plot(x, table["dcs - kd"], "^:", label="DCS − KD (the reweighting)")
        ax.set_xticks(list(x), [f"{e} ep\n{t:.0f}% / {tr:.0f}%" for e, t, tr in
                                zip(table.index, table["teacher"], table["teacher_train"])], fontsize=7)  # fmt: skip
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(title=title, xlabel="teacher epochs\n(teacher accuracy: clean test / noisy train)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("student gain, clean test (points)")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
