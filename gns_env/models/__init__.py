"""Model factories for the target networks the environments train."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from gns_env.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from gns_env.models.text import TEXT_MODELS, ModelUnavailableError, TextClassifier, build_text_classifier
from gns_env.models.vision import (
    InputNormalization,
    build_cifar_vgg,
    build_small_resnet,
    build_small_vgg,
    build_torchvision_resnet,
)

#: vision model key (``TaskSpec.model``) -> factory taking the number of classes (random init).
MODEL_BUILDERS: dict[str, Callable[[int], nn.Module]] = {
    "resnet18_cifar_stem_1ch": lambda classes: build_torchvision_resnet(18, 1, classes, stem="cifar"),
    "resnet8_lite_1ch": lambda classes: build_small_resnet((32, 64, 128), 1, 1, classes, stem_stride=2),
    "resnet_debug": lambda classes: build_small_resnet((4, 8), 1, 1, classes),
    "resnet34_cifar_stem_3ch": lambda classes: build_torchvision_resnet(34, 3, classes, stem="cifar"),
    "vgg16_bn_cifar": lambda classes: build_cifar_vgg(16, classes),
    "resnet8_lite_3ch": lambda classes: build_small_resnet((32, 64, 128), 1, 3, classes, stem_stride=2),
    "vgg_lite_3ch": lambda classes: build_small_vgg(((16,), (32,), (64, 64), (128, 128)), 3, classes),
    # uint8 input (ImageNet's in-memory pool), torchvision's 7x7 stride-2 stem
    "resnet34_imagenet_uint8": lambda classes: InputNormalization(
        build_torchvision_resnet(34, 3, classes, stem="imagenet"), IMAGENET_MEAN, IMAGENET_STD
    ),
}


def build_model(name: str, num_classes: int, pretrained: bool = False, model_config: dict | None = None) -> nn.Module:
    """A fresh model: random init for vision models, pretrained weights (or a random init of the
    same configuration) for the :data:`TEXT_MODELS`. Random parts use the global torch RNG:
    seed it first."""
    if name in TEXT_MODELS:
        return build_text_classifier(name, num_classes, pretrained, model_config)
    if name not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join([*MODEL_BUILDERS, *TEXT_MODELS])}")
    return MODEL_BUILDERS[name](num_classes)


__all__ = [
    "MODEL_BUILDERS",
    "TEXT_MODELS",
    "ModelUnavailableError",
    "TextClassifier",
    "InputNormalization",
    "build_cifar_vgg",
    "build_model",
    "build_small_resnet",
    "build_small_vgg",
    "build_torchvision_resnet",
]
