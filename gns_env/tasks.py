"""Task specifications: what network is trained on which data, and how an episode is sized.

A :class:`TaskSpec` holds everything an environment needs; :data:`PRESETS` maps every registered
env ID to its spec. ``gym.make(env_id, **overrides)`` passes the overrides through
:meth:`TaskSpec.with_overrides`, which rejects unknown fields and out-of-range values with a
message naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field

import torch

from gns_env.optim import AdamHD

#: Fields a user may override through ``gym.make(env_id, field=value)``.
OVERRIDABLE = (
    "total_steps",
    "decision_interval",
    "batch_size",
    "val_prob",
    "device",
    "precision",
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
    "weight_decay",
    "max_seq_length",
    "tokenizer",
    "pretrained",
    "model_config",
)
OPTIMIZERS = ("adam", "adamw")
#: ``TaskSpec.precision`` -> the autocast dtype of forward passes (None: plain fp32).
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
SEARCH_SPACES = ("image", "language")


@dataclass(frozen=True)
class TaskSpec:
    """One learning-rate scheduling task.

    :param env_id: the registered Gymnasium ID.
    :param description: one line shown in docs and errors.
    :param dataset: ``"fashion_mnist"``, ``"cifar10"``, ``"cifar100"``, ``"imagenet"``, ``"glue"``
        (real) or ``"synthetic"`` (debug only).
    :param model: key of :data:`gns_env.models.MODEL_BUILDERS` or :data:`gns_env.models.TEXT_MODELS`.
    :param num_classes: classes of the classification head; 1 = regression (MSE loss).
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
    :param precision: ``"fp32"``, or ``"bf16"``: forward passes (training and validation) under
        ``torch.autocast`` with bfloat16, weights and optimizer state stay fp32 (for the
        transformer envs on GPUs; CPUs support it too).
    :param data_dir: dataset folder; ``None`` = the dataset's environment variable:
        ``$GNS_DATA_DIR`` (Fashion-MNIST, CIFAR; CIFAR-10 looks at ``$GNS_CIFAR10_DIR`` first),
        ``$GNS_IMAGENET_DIR``, ``$GNS_GLUE_DIR``; then the system default or the download cache.
    :param max_nodes: padded node count of the observation (fits ResNet-34, VGG-16, RoBERTa-large).
    :param max_edges: padded edge count of the observation.
    :param synthetic: ``True`` for tasks on synthetic data (labelled as such everywhere).
    :param subset: the dataset's task, e.g. the GLUE task (``"RTE"``).
    :param metric: validation metric of the reward (:data:`gns_env.metrics.METRICS`).
    :param extra_metrics: further metrics reported in ``info`` as ``val_<name>``.
    :param optimizer: ``"adam"`` or ``"adamw"`` (decoupled weight decay).
    :param weight_decay: the optimizer's weight decay.
    :param search_space: ``"image"`` (Table 5) or ``"language"`` (Table 6) baseline grids.
    :param max_seq_length: text only: tokens per example after truncation.
    :param tokenizer: text only: tokenizer (hub ID or folder); ``None`` = the model's own.
    :param pretrained: text only: start from pretrained weights (``False`` = random init).
    :param model_config: text only, with ``pretrained=False``: configuration fields to override
        (a reduced RoBERTa for tests, e.g. ``{"num_hidden_layers": 2, "hidden_size": 32}``).
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
    precision: str = "fp32"
    data_dir: str | None = None
    max_nodes: int = 256
    max_edges: int = 1024
    synthetic: bool = False
    subset: str | None = None
    metric: str = "accuracy"
    extra_metrics: tuple[str, ...] = ()
    optimizer: str = "adam"
    weight_decay: float = 0.0
    search_space: str = "image"
    max_seq_length: int = 128
    tokenizer: str | None = None
    pretrained: bool = False
    model_config: dict | None = field(default=None, hash=False)

    @property
    def is_text(self) -> bool:
        return self.dataset == "glue"

    @property
    def metrics(self) -> tuple[str, ...]:
        """The reward metric first, then the extra ones."""
        return (self.metric, *self.extra_metrics)

    @property
    def num_decisions(self) -> int:
        """Env steps per episode: the first K optimizer steps run inside ``reset``."""
        return math.ceil((self.total_steps - self.decision_interval) / self.decision_interval)

    def build_optimizer(self, parameters, lr: float, hypergradient_lr: float | None = None) -> torch.optim.Optimizer:
        """The task's optimizer over ``parameters``: Adam, or AdamW (decoupled weight decay).

        With ``hypergradient_lr`` (beta), :class:`gns_env.optim.AdamHD` instead: the same Adam or
        AdamW whose LR, starting at ``lr``, adapts itself by hypergradient descent inside ``lr_bounds``.
        """
        if hypergradient_lr is not None:
            return AdamHD(
                parameters,
                lr=lr,
                hypergradient_lr=hypergradient_lr,
                weight_decay=self.weight_decay,
                decoupled_weight_decay=self.optimizer == "adamw",
                lr_bounds=self.lr_bounds,
            )
        optimizer_class = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
        return optimizer_class(parameters, lr=lr, weight_decay=self.weight_decay)

    def with_overrides(self, **overrides) -> TaskSpec:
        """A validated copy with ``overrides`` applied; unknown fields raise ``TypeError``."""
        unknown = sorted(set(overrides) - set(OVERRIDABLE))
        if unknown:
            raise TypeError(
                f"{self.env_id} got unknown option(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(OVERRIDABLE)}"
            )
        if "max_seq_length" in overrides and not self.is_text:
            raise ValueError(f"{self.env_id}: max_seq_length applies to text tasks only")
        if overrides.get("data_dir") is not None and self.dataset == "synthetic":
            raise ValueError(f"{self.env_id}: data_dir has no use here; this task generates its data")
        spec = dataclasses.replace(self, **overrides)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field out of range."""

        def fail(name: str, rule: str) -> None:
            raise ValueError(f"{self.env_id}: {name}={getattr(self, name)!r} is invalid; {rule}")

        for name in ("total_steps", "decision_interval", "batch_size", "val_size", "eval_batch_size", "max_seq_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                fail(name, "it must be a positive integer")
        if self.data_dir is not None and not isinstance(self.data_dir, (str, os.PathLike)):
            fail("data_dir", "it must be a folder path or None")
        if self.train_size is not None and (not isinstance(self.train_size, int) or self.train_size <= 0):
            fail("train_size", "it must be a positive integer or None")
        if self.total_steps < 2 * self.decision_interval:
            fail(
                "total_steps",
                f"it must be at least 2 x decision_interval ({2 * self.decision_interval}): reset runs "
                "the first K steps and every env step runs K more",
            )
        if not (_is_number(self.val_prob) and 0.0 <= self.val_prob <= 1.0):
            fail("val_prob", "it must lie in [0, 1]")
        for name in ("initial_lr_range", "lr_bounds"):
            pair = getattr(self, name)
            is_pair = isinstance(pair, (tuple, list)) and len(pair) == 2
            if not (is_pair and all(map(_is_number, pair)) and 0 < pair[0] <= pair[1] < math.inf):
                fail(name, "it must be (low, high) with 0 < low <= high < inf")
        low, high = self.initial_lr_range
        if low < self.lr_bounds[0] or high > self.lr_bounds[1]:
            fail("initial_lr_range", f"it must lie inside lr_bounds={self.lr_bounds}")
        if not (_is_number(self.action_scale) and 0 < self.action_scale < 1):
            fail("action_scale", "it must lie in (0, 1) so the LR factor 1 + scale * a stays positive")
        if not (_is_number(self.divergence_factor) and self.divergence_factor > 1):
            fail("divergence_factor", "it must be > 1")
        if not (_is_number(self.divergence_penalty) and self.divergence_penalty >= 0):
            fail("divergence_penalty", "it must be >= 0")
        if not (_is_number(self.weight_decay) and 0 <= self.weight_decay < 1):
            fail("weight_decay", "it must lie in [0, 1)")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"use one of {', '.join(OPTIMIZERS)}")
        if self.search_space not in SEARCH_SPACES:
            fail("search_space", f"use one of {', '.join(SEARCH_SPACES)}")
        if not isinstance(self.pretrained, bool):
            fail("pretrained", "it must be True or False")
        if self.pretrained and not self.is_text:
            fail("pretrained", "only the text models have pretrained weights; vision models start from random init")
        if self.model_config is not None:
            if not isinstance(self.model_config, dict) or not self.is_text:
                fail("model_config", "it must be a dict of transformer configuration fields (text tasks only)")
            if self.pretrained:
                fail("model_config", "it changes the architecture, so it needs pretrained=False")
        if self.tokenizer is not None and not (isinstance(self.tokenizer, str) and self.is_text):
            fail("tokenizer", "it must be a hub ID or a folder (text tasks only)")
        for name in ("max_nodes", "max_edges"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                fail(name, "it must be a positive integer")
        if self.precision not in PRECISIONS:
            fail("precision", f"use one of {', '.join(PRECISIONS)}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                fail("device", "use 'cpu', 'cuda', 'cuda:N' or 'auto'")
            if self.device.startswith("cuda") and not torch.cuda.is_available():
                fail("device", "CUDA is not available on this machine; use 'cpu' or 'auto'")


def _is_number(value: object) -> bool:
    """A real number (int, float, numpy scalar), not a bool or a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


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

# CIFAR (paper App. B.2, Table 7; Table 3's transfer targets): Adam, batch 128, T = 62600, K = 500,
# 10k validation images from train, Table 5's initial LRs. ImageNet reuses these (the paper gives none).
_CIFAR10 = dict(dataset="cifar10", num_classes=10, initial_lr_range=(1e-3, 1e-1))
_CIFAR_PAPER = dict(total_steps=62600, decision_interval=500, batch_size=128, val_size=10000)
# CPU presets on the real CIFAR-10 JPEGs ($GNS_CIFAR10_DIR: 20k train, 10k test here): ~1 min/episode.
_CIFAR_LITE = dict(total_steps=420, decision_interval=20, batch_size=128, val_size=2000, **_CIFAR10)
PRESETS.update(
    {
        spec.env_id: spec
        for spec in (
            TaskSpec(
                env_id="GNS/CIFAR10-ResNet34-v0",
                description="Paper setting (Table 7): ResNet-34 (3x3 stem, no max-pool), CIFAR-10, Adam, GPU scale",
                model="resnet34_cifar_stem_3ch",
                **_CIFAR_PAPER,
                **_CIFAR10,
            ),
            TaskSpec(
                env_id="GNS/CIFAR100-ResNet34-v0",
                description="Paper transfer target (Table 3): ResNet-34 on CIFAR-100, CIFAR-10's settings, GPU scale",
                dataset="cifar100",
                model="resnet34_cifar_stem_3ch",
                num_classes=100,
                initial_lr_range=(1e-3, 1e-1),
                **_CIFAR_PAPER,
            ),
            TaskSpec(
                env_id="GNS/CIFAR10-VGG16-v0",
                description="Paper transfer target (Table 3): VGG-16 (BN, pooled linear head) on CIFAR-10, GPU scale",
                model="vgg16_bn_cifar",
                **_CIFAR_PAPER,
                **_CIFAR10,
            ),
            TaskSpec(
                env_id="GNS/ImageNet-ResNet34-v0",
                description="Paper transfer target (Table 3): ResNet-34 on your ImageNet folder, downsampled to 64x64",
                dataset="imagenet",
                model="resnet34_imagenet_uint8",
                num_classes=1000,
                initial_lr_range=(1e-3, 1e-1),
                eval_batch_size=500,
                **_CIFAR_PAPER,
            ),
            TaskSpec(
                env_id="GNS/CIFAR10-Lite-v0",
                description="CPU default: ResNet-8 (widths 32-64-128), real CIFAR-10 JPEGs, ~1 min/episode",
                model="resnet8_lite_3ch",
                **_CIFAR_LITE,
            ),
            TaskSpec(
                env_id="GNS/CIFAR10-VGGLite-v0",
                description="CPU default: VGG-6 (4 pooled stages, widths 16-32-64-128), real CIFAR-10 JPEGs, ~1 min",
                model="vgg_lite_3ch",
                **_CIFAR_LITE,
            ),
        )
    }
)

# GLUE (paper App. B.3): AdamW with weight decay 0.1, Table 6's initial LRs, Table 8's batch
# size / T / K / metric. Validation examples are drawn from train (GLUE's test labels are
# private; the dev set is the test split).
_GLUE_TABLE_8 = {  # task: (batch, T, K, metric, extra metrics, validation examples)
    "CoLA": (16, 2680, 10, "matthews", (), 1000),
    "SST2": (32, 10525, 100, "accuracy", (), 2000),
    "MRPC": (32, 575, 10, "accuracy", ("f1",), 400),
    "QQP": (32, 56855, 1000, "accuracy", ("f1",), 5000),
    "STSB": (16, 1800, 10, "pearson", (), 600),
    "MNLI": (32, 61360, 1000, "accuracy", (), 5000),
    "QNLI": (32, 16370, 100, "accuracy", (), 5000),
    "RTE": (16, 1560, 10, "accuracy", (), 250),
}
_GLUE_CLASSES = {"MNLI": 3, "STSB": 1}
_GLUE = dict(
    dataset="glue", optimizer="adamw", weight_decay=0.1, search_space="language", pretrained=True,
    lr_bounds=(1e-7, 1e-2), eval_batch_size=128,
)  # fmt: skip
# CPU presets: MiniLM-L6 (pretrained, offline) on real data, sized to <= ~3 min per episode here.
# MRPC: 48 tokens cut the longer sentence of ~60 % of pairs but trains as well as 128 at ~2/3 the
# cost. CoLA: 32 tokens cover 99.9 % of sentences; it needs batch 32 and ~300 steps to leave the
# majority-class plateau. RTE (premises up to ~290 tokens) stays near chance at any size that fits.
_GLUE_LITE = {  # task: (batch, T, K, max_seq_length, validation examples)
    "RTE": (16, 80, 8, 128, 200),
    "MRPC": (16, 250, 10, 48, 250),
    "CoLA": (32, 300, 15, 32, 400),
    "STSB": (16, 150, 10, 128, 400),
    "SST2": (16, 200, 10, 64, 500),
}


def _glue_fields(task: str) -> dict:
    """What every preset of GLUE ``task`` shares: data, head size, metrics, optimizer."""
    metric, extra = _GLUE_TABLE_8[task][3:5]
    return dict(subset=task, num_classes=_GLUE_CLASSES.get(task, 2), metric=metric, extra_metrics=extra, **_GLUE)


def _glue_paper(task: str, size: str) -> TaskSpec:
    batch, steps, interval, _, _, val = _GLUE_TABLE_8[task]
    return TaskSpec(
        env_id=f"GNS/GLUE-{task}-RoBERTa{size}-v0",
        description=f"Paper setting (Table 8): RoBERTa-{size.lower()} fine-tuned on GLUE {task}, GPU scale",
        model=f"roberta-{size.lower()}",
        total_steps=steps,
        decision_interval=interval,
        batch_size=batch,
        val_size=val,
        initial_lr_range=(1e-5, 2e-5),
        **_glue_fields(task),
    )


def _glue_lite(task: str) -> TaskSpec:
    batch, steps, interval, length, val = _GLUE_LITE[task]
    return TaskSpec(
        env_id=f"GNS/GLUE-{task}-Lite-v0",
        description=f"CPU default: pretrained MiniLM-L6 (offline) fine-tuned on real GLUE {task}, <= ~3 min/episode",
        model="minilm-l6",
        total_steps=steps,
        decision_interval=interval,
        batch_size=batch,
        val_size=val,
        max_seq_length=length,
        initial_lr_range=(2e-5, 1e-4),
        **_glue_fields(task),
    )


PRESETS.update({spec.env_id: spec for spec in (_glue_paper(t, s) for t in _GLUE_TABLE_8 for s in ("Base", "Large"))})
PRESETS.update({spec.env_id: spec for spec in map(_glue_lite, _GLUE_LITE)})
