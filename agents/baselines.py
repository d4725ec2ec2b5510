"""Hand-designed learning-rate schedules (paper Eq. 7) and their search spaces (Tables 5, 6).

Eq. 7 in phases, with ``T_warm = eta1 * T`` and ``T_decay = eta2 * T``:

- warmup, ``t < T_warm``: ``alpha_max * t / T_warm``;
- decay, ``T_warm <= t < T_decay``: polynomial
  ``(alpha_max - alpha_min) * (1 - (t - T_warm) / (T_decay - T_warm)) ** p + alpha_min`` or cosine
  ``0.5 * (alpha_max - alpha_min) * (1 + cos(pi * (t - T_warm) / (T_decay - T_warm))) + alpha_min``;
- after the decay, ``t >= T_decay``: constant ``alpha_min``;

with ``alpha_min = mu * alpha_max``. The "constant" scheduler keeps ``alpha_max`` after warmup.

Also the Adam-HD baseline (App. B.4): :class:`HypergradientConfig` and its grids. Every config
runs on an env as ``env.reset(seed=s, options=config.reset_options())``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

KINDS = ("constant", "polynomial", "cosine")
#: The Eq. 7 parameters each kind depends on.
USED_FIELDS = {
    "constant": ("alpha_max", "eta1"),
    "polynomial": ("alpha_max", "mu", "eta1", "eta2", "power"),
    "cosine": ("alpha_max", "mu", "eta1", "eta2"),
}


@dataclass(frozen=True)
class Schedule:
    """One configuration of Eq. 7; call it with a step index ``t`` (0-based) to get the LR.

    :param kind: ``"constant"``, ``"polynomial"`` or ``"cosine"``.
    :param total_steps: T.
    :param alpha_max: peak learning rate.
    :param mu: ``alpha_min = mu * alpha_max`` (ignored by ``"constant"``).
    :param eta1: warmup fraction of T.
    :param eta2: fraction of T at which the decay ends (ignored by ``"constant"``).
    :param power: exponent p of the polynomial decay.
    """

    kind: str
    total_steps: int
    alpha_max: float
    mu: float = 0.0
    eta1: float = 0.0
    eta2: float = 1.0
    power: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not (0 <= self.eta1 < self.eta2 <= 1 or (self.kind == "constant" and 0 <= self.eta1 < 1)):
            raise ValueError(f"need 0 <= eta1 < eta2 <= 1, got eta1={self.eta1}, eta2={self.eta2}")
        if not (self.alpha_max > 0 and self.total_steps > 0 and 0 <= self.mu <= 1):
            raise ValueError("need alpha_max > 0, total_steps > 0 and 0 <= mu <= 1")

    def __call__(self, t: int) -> float:
        warm = self.eta1 * self.total_steps
        if t < warm:
            return self.alpha_max * t / warm
        if self.kind == "constant":
            return self.alpha_max
        decay_end = self.eta2 * self.total_steps
        alpha_min = self.mu * self.alpha_max
        if t >= decay_end:
            return alpha_min
        fraction = (t - warm) / (decay_end - warm)
        if self.kind == "polynomial":
            return (self.alpha_max - alpha_min) * (1 - fraction) ** self.power + alpha_min
        return 0.5 * (self.alpha_max - alpha_min) * (1 + math.cos(math.pi * fraction)) + alpha_min

    def label(self) -> str:
        """``cosine(alpha_max=0.01, mu=0.01, eta1=0, eta2=1)``: the kind and the fields it uses."""
        return f"{self.kind}(" + ", ".join(f"{k}={getattr(self, k):g}" for k in USED_FIELDS[self.kind]) + ")"

    def reset_options(self) -> dict[str, Schedule]:
        """``env.reset`` options that run this schedule (actions are ignored)."""
        return {"lr_schedule": self}

    def as_lr_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """A torch scheduler that makes ``optimizer`` follow this schedule: every group's
        ``initial_lr`` becomes ``alpha_max`` and the factor at step ``t`` is ``self(t) / alpha_max``,
        so the LR right after construction is ``self(0)`` and after ``t`` calls of ``step()`` it is ``self(t)``."""
        for group in optimizer.param_groups:
            group["initial_lr"] = self.alpha_max
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: self(t) / self.alpha_max)


#: Table 5 (image classification).
IMAGE_SEARCH_SPACE = {"alpha_max": (1e-1, 1e-2, 1e-3), "mu": (1e-1, 1e-2, 1e-3), "eta2": (0.5, 1.0), "power": (1, 2)}
#: Table 6 (language understanding): decay to 0 at the end of training, warmup fractions eta1.
LANGUAGE_SEARCH_SPACE = {"alpha_max": (1e-5, 2e-5), "eta1": (0, 0.025, 0.05, 0.075, 0.1), "power": (1, 2)}
#: ``TaskSpec.search_space`` -> the paper's grid.
SEARCH_SPACES = {"image": IMAGE_SEARCH_SPACE, "language": LANGUAGE_SEARCH_SPACE}


def schedule_grid(kind: str, total_steps: int, space: dict[str, tuple] = IMAGE_SEARCH_SPACE) -> list[Schedule]:
    """Every configuration of ``kind`` in ``space`` (only the fields ``kind`` uses)."""
    names = [name for name in USED_FIELDS[kind] if name in space]
    return [
        Schedule(kind, total_steps, **dict(zip(names, values)))
        for values in itertools.product(*(space[name] for name in names))
    ]



#: App. B.4: Adam-HD's ``alpha0`` (initial LR) and ``beta`` (hypergradient LR) per search space.
HYPERGRADIENT_SEARCH_SPACES = {
    "image": {"alpha0": (1e-1, 1e-2, 1e-3), "beta": (1e-7, 1e-8, 1e-9)},
    "language": {"alpha0": (1e-5, 2e-5), "beta": (1e-7, 1e-8, 1e-9)},
}


@dataclass(frozen=True)
class HypergradientConfig:
    """One Adam-HD setting (Algorithm 2): initial LR ``alpha0`` and hypergradient LR ``beta``."""

    alpha0: float
    beta: float

    def label(self) -> str:
        """``adam-hd(alpha0=0.01, beta=1e-07)``."""
        return f"adam-hd(alpha0={self.alpha0:g}, beta={self.beta:g})"

    def reset_options(self) -> dict[str, float]:
        """``env.reset`` options that run Adam-HD from ``alpha0`` (actions are ignored)."""
        return {"initial_lr": self.alpha0, "hypergradient_lr": self.beta}


def hypergradient_grid(space: dict[str, tuple] = HYPERGRADIENT_SEARCH_SPACES["image"]) -> list[HypergradientConfig]:
    """Every ``(alpha0, beta)`` of ``space`` (App. B.4: 9 image, 6 language settings)."""
    return [HypergradientConfig(a, b) for a, b in itertools.product(space["alpha0"], space["beta"])]
