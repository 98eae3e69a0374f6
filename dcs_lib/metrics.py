"""GLUE metrics on NumPy arrays.

Each function takes ``predictions`` (class ids, or scores for regression) and
``labels`` of the same length and returns a float. Scores are fractions in
[0, 1] (or [-1, 1] for correlations), as scikit-learn and SciPy return them.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(accuracy_score(labels, predictions))


def f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    # GLUE's F1 is the binary F1 of the positive class (1 = paraphrase / duplicate).
    return float(f1_score(labels, predictions, zero_division=0.0))


def matthews(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float(matthews_corrcoef(labels, predictions))


def _correlation(fn, predictions: np.ndarray, labels: np.ndarray) -> float:
    if np.std(predictions) == 0 or np.std(labels) == 0:
        return 0.0  # a constant predictor has no correlation; SciPy would return NaN
    return float(fn(predictions, labels)[0])


def pearson(predictions: np.ndarray, labels: np.ndarray) -> float:
    return _correlation(pearsonr, predictions, labels)


def spearman(predictions: np.ndarray, labels: np.ndarray) -> float:
    return _correlation(spearmanr, predictions, labels)


METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": matthews,
    "pearson": pearson,
    "spearman": spearman,
}


def compute(names: tuple[str, ...], predictions, labels) -> dict[str, float]:
    """Compute each metric in ``names``: ``{"accuracy": 0.71, ...}``."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return {name: METRICS[name](predictions, labels) for name in names}
