"""Per-sample losses and their weighted average.

Every function here returns one loss per example, shape (batch,), so that DCS can
weight examples; :func:`weighted_mean` then reduces them. Logits are cast to
float32 first: under mixed precision, softmax and log in half precision lose the
small probabilities that distillation is about.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits: (batch, classes), labels: (batch,) class ids -> (batch,)."""
    return F.cross_entropy(logits.float(), labels, reduction="none")


def squared_error(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """scores: (batch, 1) or (batch,), targets: (batch,) -> (batch,)."""
    return (scores.float().reshape(-1) - targets.float()) ** 2


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """T^2 * KL(teacher || student) on temperature-softened distributions -> (batch,).

    Softening by T shrinks this term's gradients by about 1/T^2 once T is large; multiplying
    by T^2 (Hinton et al., 2015) keeps their size roughly the same as T changes, so that the
    balance with the cross-entropy term does not silently move (exactly only as T grows).
    """
    t = temperature
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    return t * t * kl


WEIGHT_NORMS = ("batch", "mean")


def weighted_mean(per_sample: torch.Tensor, weights: torch.Tensor | None = None, norm: str = "batch") -> torch.Tensor:
    """sum_i w_i * loss_i / sum_i w_i; the plain mean when ``weights`` is None.

    ``norm="batch"`` (this package's reading, the default) divides by the batch's own
    weight sum, so the weights only rebalance examples within a batch: a batch whose
    weights are all 10 gives the same loss as one whose weights are all 0.1, a batch of
    one example ignores its weight, and batch 16 with 2 accumulation steps is not the
    same objective as batch 32. ``norm="mean"`` divides by the batch size instead:
    since the DCS update rescales the weights to mean 1 over the training set, this is
    AdaBoost's global weighting, and a batch of heavy examples takes a bigger step.
    """
    if weights is None:
        return per_sample.mean()
    weights = weights.to(per_sample.dtype)
    if norm == "mean":
        return (weights * per_sample).mean()
    if norm != "batch":
        raise ValueError(f"unknown weight normalisation {norm!r}; choose one of {WEIGHT_NORMS}")
    return (weights * per_sample).sum() / weights.sum()


def supervised(logits: torch.Tensor, labels: torch.Tensor, regression: bool = False) -> torch.Tensor:
    """CE for classification, squared error for regression -> (batch,)."""
    return squared_error(logits, labels) if regression else cross_entropy(logits, labels)


def distillation(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, regression: bool = False
) -> torch.Tensor:
    """KD term: T^2 * KL for classification, squared error to the teacher's score for regression."""
    if regression:
        return squared_error(student_logits, teacher_logits.reshape(-1))
    return kd_kl(student_logits, teacher_logits, temperature)


def dcs_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor,
    weights: torch.Tensor | None = None,
    alpha: float = 0.5,
    temperature: float = 2.0,
    regression: bool = False,
    norm: str = "batch",
) -> torch.Tensor:
    """The DCS objective for one batch, a scalar:

        sum_i w_i * (alpha * CE_i + (1 - alpha) * T^2 * KL_i) / sum_i w_i

    With uniform weights this is the usual KD loss; with ``alpha = 1`` and uniform
    weights it is plain cross-entropy. The weights are normalised within the batch, as
    :func:`weighted_mean` says (``norm="mean"``: divided by the batch size instead).
    """
    per_sample = alpha * supervised(student_logits, labels, regression)
    if alpha < 1:
        per_sample = per_sample + (1 - alpha) * distillation(student_logits, teacher_logits, temperature, regression)
    return weighted_mean(per_sample, weights, norm)
