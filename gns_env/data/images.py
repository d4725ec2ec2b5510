"""Image splits of each task as in-memory tensors, cached per process.

Fashion-MNIST and CIFAR come normalised (float32); ImageNet stays uint8 (4x less memory) and
its model normalises its input (:class:`gns_env.models.vision.InputNormalization`).
"""

from __future__ import annotations

import functools
import os

import torch
from torch.utils.data import TensorDataset

from gns_env.data.cifar import CIFAR, load_cifar
from gns_env.data.fashion_mnist import load_fashion_mnist
from gns_env.data.imagenet import load_imagenet
from gns_env.data.synthetic import make_synthetic_images

FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
_SYNTHETIC_SIZES = {"train": 1024, "test": 256}
#: Environment variables the loaders read: part of the cache key, so changing one reloads.
_SETTINGS = ("GNS_DATA_DIR", "GNS_CIFAR10_DIR", "GNS_IMAGENET_DIR", "GNS_CACHE_DIR")


def load_image_split(dataset: str, split: str, data_dir: str | None = None) -> TensorDataset:
    """``dataset`` ("fashion_mnist", "cifar10", "cifar100", "imagenet" or "synthetic") ``split``
    ("train"/"test") as images ``(N, C, H, W)`` (float32 normalised; uint8 for ImageNet) and
    int64 labels ``(N,)``."""
    return _load(dataset, split, data_dir, tuple(os.environ.get(name) for name in _SETTINGS))


@functools.lru_cache(maxsize=4)
def _load(dataset: str, split: str, data_dir: str | None, _settings: tuple) -> TensorDataset:
    if dataset == "fashion_mnist":
        images, labels = load_fashion_mnist(split, data_dir).tensors
        normalised = (images.float() / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
        return TensorDataset(normalised, labels)
    if dataset in CIFAR:
        images, labels = load_cifar(dataset, split, data_dir).tensors
        mean = torch.tensor(CIFAR[dataset].mean).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR[dataset].std).view(1, 3, 1, 1)
        return TensorDataset((images.float() / 255 - mean) / std, labels)
    if dataset == "imagenet":
        return load_imagenet(split, data_dir)
    if dataset == "synthetic":
        seed = 0 if split == "train" else 1
        return make_synthetic_images(_SYNTHETIC_SIZES[split], num_classes=4, image_size=8, seed=seed)
    raise ValueError(f"unknown dataset {dataset!r}")
