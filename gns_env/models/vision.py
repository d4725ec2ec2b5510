"""Image classifiers built from torchvision's ResNet pieces.

Two factories:

- :func:`build_torchvision_resnet` — the paper's networks (torchvision ``resnet18``/``resnet34``)
  with the stem adapted to the input: ``"cifar"`` = 3x3 stride-1 convolution and no max-pool
  (the usual choice for 28x28 / 32x32 images), ``"imagenet"`` = torchvision's 7x7 stride-2 stem.
- :func:`build_small_resnet` — narrow ResNets for CPU presets: a conv/BN/ReLU stem, stages of
  torchvision :class:`~torchvision.models.resnet.BasicBlock` (stride 2 between stages), global
  average pooling and a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock, conv1x1

_TORCHVISION_RESNETS = {18: resnet.resnet18, 34: resnet.resnet34}


def build_torchvision_resnet(
    depth: int, in_channels: int, num_classes: int, stem: str = "cifar"
) -> resnet.ResNet:
    """torchvision ResNet-``depth`` (random init) with an ``in_channels`` stem.

    :param depth: 18 or 34.
    :param in_channels: image channels (1 for Fashion-MNIST, 3 for CIFAR).
    :param num_classes: size of the classification head.
    :param stem: ``"cifar"`` (3x3 stride-1 conv, no max-pool) or ``"imagenet"`` (7x7 stride 2 + pool).
    """
    if depth not in _TORCHVISION_RESNETS:
        raise ValueError(f"depth must be one of {sorted(_TORCHVISION_RESNETS)}, got {depth}")
    model = _TORCHVISION_RESNETS[depth](weights=None, num_classes=num_classes)
    if stem == "cifar":
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif stem == "imagenet":
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    return model


def build_small_resnet(
    widths: Sequence[int],
    blocks_per_stage: int,
    in_channels: int,
    num_classes: int,
    stem_stride: int = 1,
) -> nn.Sequential:
    """A narrow ResNet: stem, ``len(widths)`` stages of BasicBlocks, pooling, linear head.

    Input ``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``. Each stage after the first
    halves the resolution; a 1x1 projection (conv + BN) carries the skip when the shape changes.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=stem_stride, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    ]
    channels = widths[0]
    for stage, width in enumerate(widths):
        for index in range(blocks_per_stage):
            stride = 2 if stage > 0 and index == 0 else 1
            downsample = None
            if stride != 1 or channels != width:
                downsample = nn.Sequential(conv1x1(channels, width, stride), nn.BatchNorm2d(width))
            layers.append(BasicBlock(channels, width, stride, downsample))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
