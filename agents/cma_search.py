"""CMA-ES over the cosine schedule's parameters (paper App. E.7, Tables 16 and 17).

The search runs in the unit cube: coordinate ``z_i`` in [0, 1] maps to the i-th parameter of the
task's space (log-uniform ranges through their log), with the ``cma`` package's box bounds.
CMA-ES minimises, so it is told ``-metric``. With a fixed ``seed`` and the same told values it
asks the same candidates again, which is how a resumed comparison replays a search from its
stored evaluations without re-running them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from agents.baselines import Schedule

#: Parameter -> (scale, low, high). Table 16 (images) and Table 17 (language, decay to 0).
CMA_SEARCH_SPACES: dict[str, dict[str, tuple[str, float, float]]] = {
    "image": {"alpha_max": ("log", 1e-3, 1e-1), "mu": ("log", 1e-3, 1e-1), "eta2": ("linear", 0.5, 1.0)},
    "language": {"alpha_max": ("log", 1e-5, 1e-4), "eta1": ("linear", 0.0, 0.1)},
}


def decode(z: np.ndarray, space: dict[str, tuple[str, float, float]], total_steps: int) -> Schedule:
    """The cosine schedule at point ``z`` ((d,) in [0, 1]) of ``space``."""
    params = {}
    for zi, (name, (scale, low, high)) in zip(np.clip(z, 0.0, 1.0), space.items()):
        if scale == "log":
            params[name] = float(math.exp(math.log(low) + zi * (math.log(high) - math.log(low))))
        else:
            params[name] = float(low + zi * (high - low))
    return Schedule("cosine", total_steps, **params)


class CosineCMASearch:
    """Ask/tell CMA-ES over ``space`` with a budget of ``evaluations`` schedules.

    :param space: one of :data:`CMA_SEARCH_SPACES` (or the same shape).
    :param total_steps: T of the task.
    :param evaluations: total schedules to evaluate (paper: 50).
    :param seed: CMA-ES's random seed.
    :param sigma0: initial step size in the unit cube; the search starts at its centre.
    """

    def __init__(
        self, space: dict, total_steps: int, evaluations: int = 50, seed: int = 0, sigma0: float = 0.3
    ) -> None:
        import cma

        if evaluations <= 0:
            raise ValueError(f"evaluations must be positive, got {evaluations}")
        self.space = space
        self.total_steps = total_steps
        self.remaining = evaluations
        options = {"bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9}  # cma: seed 0 = random
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cma warns that the initial sigma is large for the box
            self._es = cma.CMAEvolutionStrategy([0.5] * len(space), sigma0, options)
        self._asked: list[np.ndarray] = []

    def ask(self) -> list[Schedule]:
        """The next generation (fewer than a population when the budget runs out)."""
        if self.remaining <= 0:
            return []
        self._asked = [np.asarray(z) for z in self._es.ask()]
        return [decode(z, self.space, self.total_steps) for z in self._asked[: self.remaining]]

    def tell(self, metrics: list[float]) -> None:
        """The validation metrics of the schedules of the last :meth:`ask` (higher is better)."""
        self.remaining -= len(metrics)
        if len(metrics) == len(self._asked):
            self._es.tell(self._asked, [-float(m) for m in metrics])
        # A partial last generation only spends the budget; CMA-ES needs whole populations.
