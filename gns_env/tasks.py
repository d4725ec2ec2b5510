"""Task specifications: what network is trained on which data, and how an episode is sized.

A :class:`TaskSpec` holds everything an environment needs; :data:`PRESETS` maps every registered
env ID to its spec. ``gym.make(env_id, **overrides)`` passes the overrides through
:meth:`TaskSpec.with_overrides`, which rejects unknown fields and out-of-range values with a
message naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

#: Fields a user may override through ``gym.make(env_id, field=value)``.
OVERRIDABLE = (
    "total_steps",
    "decision_interval",
    "batch_size",
    "val_prob",
    "device",
    "data_dir",
    "max_nodes",
    "max_edges",
    "val_size",
    "train_size",
    "eval_batch_size",
    "initial_lr_range",
    "lr_bounds",
    "action_scale",
    "divergence_factor",
    "divergence_penalty",
)


@dataclass(frozen=True)
class TaskSpec:
    """One learning-rate scheduling task.

    :param env_id: the registered Gymnasium ID.
    :param description: one line shown in docs and errors.
    :param dataset: ``"fashion_mnist"`` (real) or ``"synthetic"`` (debug only).
    :param model: key of :data:`gns_env.trainer.MODEL_BUILDERS`.
    :param num_classes: classes of the classification head.
    :param total_steps: T, optimizer steps per episode (paper Table 7).
    :param decision_interval: K, optimizer steps between two decisions.
    :param batch_size: training mini-batch size.
    :param val_size: validation images, drawn from the training split at every reset.
    :param train_size: training images per episode (drawn from the rest); ``None`` = all the rest.
    :param val_prob: p, probability of validating at a decision (the last one always validates).
    :param initial_lr_range: ``(low, high)`` of the log-uniform prior over the initial LR (Table 5).
    :param lr_bounds: ``(min, max)`` the LR is clipped to after every action.
    :param action_scale: LR <- LR * (1 + action_scale * a); 0.1 gives the paper's [0.9, 1.1].
    :param divergence_factor: the episode diverges when the mean training loss over K steps
        exceeds ``divergence_factor`` x the loss of the very first batch (or is not finite).
    :param divergence_penalty: reward on divergence is ``-divergence_penalty``.
    :param eval_batch_size: batch size of validation passes.
    :param device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
    :param data_dir: dataset folder; ``None`` = ``$GNS_DATA_DIR``, then the system default.
    :param max_nodes: padded node count of the observation (fits ResNet-34, VGG-16, RoBERTa-large).
    :param max_edges: padded edge count of the observation.
    :param synthetic: ``True`` for tasks on synthetic data (labelled as such everywhere).
    """

    env_id: str
    description: str
    dataset: str
    model: str
    num_classes: int
    total_steps: int
    decision_interval: int
    batch_size: int
    val_size: int
    train_size: int | None = None
    val_prob: float = 0.2
    initial_lr_range: tuple[float, float] = (1e-3, 1e-1)
    lr_bounds: tuple[float, float] = (1e-6, 1.0)
    action_scale: float = 0.1
    divergence_factor: float = 10.0
    divergence_penalty: float = 1.0
    eval_batch_size: int = 1000
    device: str = "cpu"
    data_dir: str | None = None
    max_nodes: int = 256
    max_edges: int = 1024
    synthetic: bool = False
    metric: str = field(default="accuracy")

    @property
    def num_decisions(self) -> int:
        """Env steps per episode: the first K optimizer steps run inside ``reset``."""
        return math.ceil((self.total_steps - self.decision_interval) / self.decision_interval)

    def with_overrides(self, **overrides) -> TaskSpec:
        """A validated copy with ``overrides`` applied; unknown fields raise ``TypeError``."""
        unknown = sorted(set(overrides) - set(OVERRIDABLE))
        if unknown:
            raise TypeError(
                f"{self.env_id} got unknown option(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(OVERRIDABLE)}"
            )
        spec = dataclasses.replace(self, **overrides)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field out of range."""

        def fail(name: str, rule: str) -> None:
            raise ValueError(f"{self.env_id}: {name}={getattr(self, name)!r} is invalid; {rule}")

        for name in ("total_steps", "decision_interval", "batch_size", "val_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                fail(name, "it must be a positive integer")
        if self.train_size is not None and (not isinstance(self.train_size, int) or self.train_size <= 0):
            fail("train_size", "it must be a positive integer or None")
        if self.total_steps < 2 * self.decision_interval:
            fail(
                "total_steps",
                f"it must be at least 2 x decision_interval ({2 * self.decision_interval}): reset runs "
                "the first K steps and every env step runs K more",
            )
        if not 0.0 <= self.val_prob <= 1.0:
            fail("val_prob", "it must lie in [0, 1]")
        for name in ("initial_lr_range", "lr_bounds"):
            low, high = getattr(self, name)
            if not (0 < low <= high and math.isfinite(high)):
                fail(name, "it must be (low, high) with 0 < low <= high < inf")
        low, high = self.initial_lr_range
        if low < self.lr_bounds[0] or high > self.lr_bounds[1]:
            fail("initial_lr_range", f"it must lie inside lr_bounds={self.lr_bounds}")
        if not 0 < self.action_scale < 1:
            fail("action_scale", "it must lie in (0, 1) so the LR factor 1 + scale * a stays positive")
        if not self.divergence_factor > 1:
            fail("divergence_factor", "it must be > 1")
        if not self.divergence_penalty >= 0:
            fail("divergence_penalty", "it must be >= 0")
        for name in ("max_nodes", "max_edges"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                fail(name, "it must be a positive integer")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                fail("device", "use 'cpu', 'cuda', 'cuda:N' or 'auto'")
            if self.device.startswith("cuda") and not torch.cuda.is_available():
                fail("device", "CUDA is not available on this machine; use 'cpu' or 'auto'")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; any other name as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


_FASHION_MNIST = dict(dataset="fashion_mnist", num_classes=10, initial_lr_range=(1e-3, 1e-1))

PRESETS: dict[str, TaskSpec] = {
    spec.env_id: spec
    for spec in (
        TaskSpec(
            env_id="GNS/FashionMNIST-ResNet18-v0",
            description="Paper setting (Table 7): ResNet-18, Fashion-MNIST, Adam, GPU scale",
            model="resnet18_cifar_stem_1ch",
            total_steps=78200,
            decision_interval=500,
            batch_size=128,
            val_size=10000,
            **_FASHION_MNIST,
        ),
        TaskSpec(
            env_id="GNS/FashionMNIST-Lite-v0",
            description="CPU default: ResNet-8 (widths 32-64-128), real Fashion-MNIST, ~1 min/episode",
            model="resnet8_lite_1ch",
            total_steps=420,
            decision_interval=20,
            batch_size=128,
            val_size=2000,
            train_size=None,
            **_FASHION_MNIST,
        ),
        TaskSpec(
            env_id="GNS/Debug-v0",
            description="SYNTHETIC data, tiny ResNet: for CI, smoke tests and env checkers only",
            dataset="synthetic",
            model="resnet_debug",
            num_classes=4,
            total_steps=8,
            decision_interval=2,
            batch_size=32,
            val_size=128,
            eval_batch_size=128,
            initial_lr_range=(1e-3, 1e-2),
            synthetic=True,
        ),
    )
}
