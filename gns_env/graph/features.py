"""Per-decision node features (paper §4.1, App. E.8).

For every node (a module that owns parameters): mean and variance of its weights, of its
biases, and of the absolute values of their gradients, a has-bias flag, and the global
dynamics (current LR, mean training loss over the last K steps). Gradients are those left by
the last optimizer step, so no extra forward or backward pass is needed.

Raw statistics span many orders of magnitude and differ between architectures, so they are
log-transformed (one policy must read ResNet and RoBERTa alike):

- signed statistics (means):  ``sign(m) * log10(1 + |m| / 1e-8) / 8``
- non-negative ones (variances, mean |grad|):  ``log10(v + 1e-16) / 8``
- LR: ``log10(lr)``; loss: ``log(1 + loss)``.

Both transforms are monotone, so no information is lost; zero (no bias) maps to 0 and -2.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gns_env.graph.builder import ModelGraph

NODE_FEATURE_NAMES = (
    "weight_mean",
    "weight_var",
    "bias_mean",
    "bias_var",
    "abs_grad_weight_mean",
    "abs_grad_weight_var",
    "abs_grad_bias_mean",
    "abs_grad_bias_var",
    "has_bias",
    "log10_lr",
    "log1p_loss",
)
_EPS = 1e-8
_SCALE = 8.0
#: The LR an observation reports for an LR of 0 (``log10`` = -12).
SMALLEST_OBSERVED_LR = 1e-12


def signed_log(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log10(1 + |x| / 1e-8) / 8``: about [-1.3, 1.3] for |x| <= 1e2."""
    return torch.sign(x) * torch.log10(1 + x.abs() / _EPS) / _SCALE


def positive_log(x: torch.Tensor) -> torch.Tensor:
    """``log10(x + 1e-16) / 8`` for non-negative statistics: 0 -> -2, 1 -> 0."""
    return torch.log10(x.clamp_min(0) + _EPS * _EPS) / _SCALE


def _concat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0].reshape(-1) if len(tensors) == 1 else torch.cat([t.reshape(-1) for t in tensors])


def _mean_var(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    flat = _concat(tensors)
    var, mean = torch.var_mean(flat, correction=0)
    return mean, var


class NodeFeaturizer:
    """Computes the ``(N, F)`` node feature matrix of ``model`` for the nodes of ``graph``.

    :param graph: the static graph (its ``node_names`` are resolved in ``model``).
    :param model: the network being trained; bind a new featurizer to every new model.

    ``last_finite`` tells whether the statistics of the last :meth:`compute` were all finite
    (before sanitising), i.e. whether the network's parameters and gradients are intact.
    """

    def __init__(self, graph: ModelGraph, model: nn.Module) -> None:
        self.last_finite = True
        self._weights: list[list[nn.Parameter]] = []
        self._biases: list[list[nn.Parameter]] = []
        for name in graph.node_names:
            module = model.get_submodule(name)
            params = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad]
            weights = [p for n, p in params if "bias" not in n]
            biases = [p for n, p in params if "bias" in n]
            if not weights:  # a module owning only biases: treat them as its weights
                weights, biases = biases, []
            self._weights.append(weights)
            self._biases.append(biases)

    @torch.no_grad()
    def compute(self, lr: float, loss: float) -> torch.Tensor:
        """Node features ``(N, len(NODE_FEATURE_NAMES))`` float32 on the CPU, always finite."""
        rows = []
        for weights, biases in zip(self._weights, self._biases):
            w_mean, w_var = _mean_var(weights)
            gw_mean, gw_var = _mean_var([_abs_grad(p) for p in weights])
            if biases:
                b_mean, b_var = _mean_var(biases)
                gb_mean, gb_var = _mean_var([_abs_grad(p) for p in biases])
                has_bias = torch.ones_like(w_mean)
            else:
                b_mean = b_var = gb_mean = gb_var = has_bias = torch.zeros_like(w_mean)
            rows.append(torch.stack([w_mean, w_var, b_mean, b_var, gw_mean, gw_var, gb_mean, gb_var, has_bias]))
        raw = torch.stack(rows).float().cpu()  # (N, 9), one device->host copy
        self.last_finite = bool(torch.isfinite(raw).all())
        features = torch.empty((raw.shape[0], len(NODE_FEATURE_NAMES)), dtype=torch.float32)
        signed = [0, 2]
        positive = [1, 3, 4, 5, 6, 7]
        features[:, signed] = signed_log(raw[:, signed])
        features[:, positive] = positive_log(raw[:, positive])
        features[:, 8] = raw[:, 8]
        features[:, 9] = log_lr(lr)
        features[:, 10] = math.log1p(loss) if math.isfinite(loss) and loss > -1 else 0.0
        return sanitize(features)


def log_lr(lr: float) -> float:
    """The LR feature, ``log10(lr)``; an LR of 0 (a warmup schedule's first step) reads as
    ``log10(SMALLEST_OBSERVED_LR)``."""
    return math.log10(max(lr, SMALLEST_OBSERVED_LR))


def _abs_grad(parameter: nn.Parameter) -> torch.Tensor:
    return parameter.grad.abs() if parameter.grad is not None else torch.zeros_like(parameter)


def sanitize(x: torch.Tensor, bound: float = 1e4) -> torch.Tensor:
    """Replace NaN by 0 and clip to ``[-bound, bound]`` (diverged networks give non-finite stats)."""
    return torch.nan_to_num(x, nan=0.0, posinf=bound, neginf=-bound).clamp_(-bound, bound)
