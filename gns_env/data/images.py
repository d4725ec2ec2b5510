"""Image splits of each task as normalised float32 tensors, cached per process."""

from __future__ import annotations

import functools

from torch.utils.data import TensorDataset

from gns_env.data.fashion_mnist import load_fashion_mnist
from gns_env.data.synthetic import make_synthetic_images

FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
_SYNTHETIC_SIZES = {"train": 1024, "test": 256}


@functools.lru_cache(maxsize=4)
def load_image_split(dataset: str, split: str, data_dir: str | None = None) -> TensorDataset:
    """``dataset`` ("fashion_mnist" or "synthetic") ``split`` ("train"/"test") as float32 images
    ``(N, C, H, W)`` (normalised) and int64 labels ``(N,)``."""
    if dataset == "fashion_mnist":
        images, labels = load_fashion_mnist(split, data_dir).tensors
        normalised = (images.float() / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
        return TensorDataset(normalised, labels)
    if dataset == "synthetic":
        seed = 0 if split == "train" else 1
        return make_synthetic_images(_SYNTHETIC_SIZES[split], num_classes=4, image_size=8, seed=seed)
    raise ValueError(f"unknown dataset {dataset!r}")
