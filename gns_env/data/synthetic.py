"""Tiny synthetic image classification data for the debug environment and tests.

SYNTHETIC: class prototypes plus Gaussian noise. Learnable in a few dozen steps, never meant
to measure a scheduler.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


def make_synthetic_images(
    num_samples: int, num_classes: int, image_size: int, channels: int = 1, seed: int = 0, task_seed: int = 0
) -> TensorDataset:
    """``num_samples`` images ``(channels, image_size, image_size)`` float32 and int64 labels.

    Each class has a random +-1 prototype (drawn from ``task_seed``: splits made with other
    ``seed`` values share them); a sample is its class prototype plus N(0, 1) noise. Labels
    cycle through the classes, so every class has the same count (+-1).
    """
    shape = (channels, image_size, image_size)
    task_generator = torch.Generator().manual_seed(task_seed)
    prototypes = torch.randint(0, 2, (num_classes, *shape), generator=task_generator).float() * 2 - 1
    generator = torch.Generator().manual_seed(1_000_003 + seed)
    labels = torch.arange(num_samples) % num_classes
    images = prototypes[labels] + torch.randn((num_samples, *shape), generator=generator)
    return TensorDataset(images, labels)
