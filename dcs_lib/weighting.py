"""Sample weights: the corrective heart of DCS, as pure functions on tensors.

After each epoch, every training example gets a disagreement flag ``d_i`` (1 when
the student's prediction differs from the teacher's for DCS, or from the gold label
for the reweighting baseline), and its weight grows where ``d_i = 1``:

    w_i <- w_i * exp(step * d_i)

``step`` is either a fixed ``lam`` or (``"adaboost"``) AdaBoost's step size
``lam * 0.5 * ln((1 - eps) / eps)``, eps being the weighted disagreement rate. The
weights are then rescaled to mean 1 and kept within ``[clip_min, clip_max]``.

The update is one-sided, unlike AdaBoost's: only discordant weights are raised, and
concordant ones are not lowered. So with ``"adaboost"`` and ``lam = 1`` a discordant
example's weight rises by sqrt((1 - eps) / eps) relative to a concordant one's (before
clipping), where AdaBoost, which also lowers the right ones by exp(-step), gives
(1 - eps) / eps.

The paper describes the idea (raise the weight where student and teacher disagree,
AdaBoost-style); the exact formula, the step rules, the accumulation and the
clipping are this package's reading, each an option.
"""

from __future__ import annotations

import math

import torch

STEPS = ("fixed", "adaboost")


def disagreement(
    student_logits: torch.Tensor, reference: torch.Tensor, *, regression: bool = False, delta: float = 0.5
) -> torch.Tensor:
    """1.0 where the student disagrees with ``reference``, else 0.0 -> (n,) float.

    Classification: ``reference`` is teacher logits (n, classes) or gold class ids (n,);
    the student disagrees when its argmax differs. Regression: scores, and the student
    disagrees when ``|student - reference| > delta``.
    """
    if regression:
        return ((student_logits.reshape(-1) - reference.reshape(-1)).abs() > delta).float()
    target = reference.argmax(dim=-1) if reference.dim() == 2 else reference
    return (student_logits.argmax(dim=-1) != target).float()


def step_size(weights: torch.Tensor, disagree: torch.Tensor, lam: float = 1.0, step: str = "fixed") -> float:
    """How far to move discordant examples, a float >= 0.

    ``"fixed"``: ``lam``. ``"adaboost"``: ``lam * 0.5 * ln((1 - eps) / eps)`` with eps the
    weighted disagreement rate, clamped to [1e-6, 0.5]: at eps >= 0.5 the step is 0, so
    a discordant example never loses weight. That is AdaBoost's step size, but
    :func:`update_weights` applies it one-sided (discordant weights only), so a discordant
    example gains a factor exp(step) = ((1 - eps) / eps) ** (lam / 2) over a concordant
    one: at ``lam = 1`` the square root of AdaBoost's ratio (1 - eps) / eps.
    """
    if step == "fixed":
        return float(lam)
    if step == "adaboost":
        eps = float((weights * disagree).sum() / weights.sum())
        eps = min(max(eps, 1e-6), 0.5)
        return lam * 0.5 * math.log((1 - eps) / eps)
    raise ValueError(f"unknown step rule {step!r}; choose one of {STEPS}")


def rescale(weights: torch.Tensor, clip_min: float = 0.1, clip_max: float = 10.0) -> torch.Tensor:
    """Scale ``weights`` so that, clipped to [clip_min, clip_max], they average 1.

    Plain "divide by the mean, then clip" breaks the mean whenever something is
    clipped; instead we find the scale ``s`` with ``mean(clip(s * w)) = 1`` by
    bisection (the clipped mean grows with ``s``), so both promises hold at once.
    """
    if not clip_min <= 1.0 <= clip_max:
        raise ValueError(f"clip range [{clip_min}, {clip_max}] must contain 1")
    w = weights.double()
    scaled = w / w.mean()
    if float(scaled.min()) >= clip_min and float(scaled.max()) <= clip_max:
        return scaled.to(weights.dtype)  # nothing to clip: uniform weights stay exactly 1
    lo, hi = 0.0, clip_max / float(w.min())
    for _ in range(100):
        s = (lo + hi) / 2
        if float((s * w).clamp(clip_min, clip_max).mean()) < 1.0:
            lo = s
        else:
            hi = s
    return (hi * w).clamp(clip_min, clip_max).to(weights.dtype)


def update_weights(
    weights: torch.Tensor,
    disagree: torch.Tensor,
    *,
    lam: float = 1.0,
    step: str = "fixed",
    accumulate: bool = True,
    clip_min: float = 0.1,
    clip_max: float = 10.0,
) -> torch.Tensor:
    """One DCS weight update -> new weights (n,), positive, mean 1.

    ``w_i * exp(step * d_i)`` (one-sided, see the module docstring), then :func:`rescale`.
    weights: (n,) current weights; disagree: (n,) 0/1 flags. With ``accumulate=False``
    the update starts again from uniform weights, so only this epoch's disagreement
    counts.
    """
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam}")
    base = weights if accumulate else torch.ones_like(weights)
    alpha = step_size(base, disagree, lam, step)
    return rescale(base * torch.exp(alpha * disagree.to(base.dtype)), clip_min, clip_max)


def weight_stats(weights: torch.Tensor, disagree: torch.Tensor | None = None) -> dict[str, float]:
    """Summary of a weight vector for the run record and for plots.

    ``ess`` is the effective sample size (sum w)^2 / sum w^2 as a fraction of n: 1 for
    uniform weights, smaller as weight concentrates on few examples.
    """
    w = weights.double()
    stats = {
        "mean": float(w.mean()),
        "max": float(w.max()),
        "min": float(w.min()),
        "ess": float(w.sum() ** 2 / (w * w).sum() / len(w)),
    }
    if disagree is not None:
        stats["discordant"] = float(disagree.double().mean())
    return stats
