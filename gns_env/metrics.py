"""Validation metrics of the tasks (GLUE's official definitions, through scikit-learn / SciPy).

Every function takes predictions and targets as 1-D tensors of equal length — class ids for
classification, scores for regression — and returns a finite float: a metric that is undefined
(a constant prediction has no correlation) counts as 0, the value of a chance-level predictor.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.metrics import f1_score, matthews_corrcoef


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of exact matches."""
    return float((predictions == targets).float().mean()) if len(targets) else 0.0


def matthews(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Matthews correlation coefficient (CoLA)."""
    return float(matthews_corrcoef(targets.cpu().numpy(), predictions.cpu().numpy()))


def f1(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """F1 of the positive class 1 (MRPC, QQP)."""
    return float(f1_score(targets.cpu().numpy(), predictions.cpu().numpy(), pos_label=1, zero_division=0.0))


def pearson(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Pearson correlation of predicted and true scores (STS-B)."""
    x = predictions.double().cpu().numpy()
    y = targets.double().cpu().numpy()
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0 or not np.isfinite(x).all():
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(pearsonr(x, y)[0])
    return value if math.isfinite(value) else 0.0


#: metric name (``TaskSpec.metric``, ``TaskSpec.extra_metrics``) -> function.
METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    "accuracy": accuracy,
    "matthews": matthews,
    "f1": f1,
    "pearson": pearson,
}


def compute_metrics(names: Sequence[str], predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """``{name: value}`` for every metric in ``names``."""
    return {name: METRICS[name](predictions, targets) for name in names}
