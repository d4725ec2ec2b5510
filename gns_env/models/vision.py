"""Image classifiers built from torchvision's ResNet and VGG pieces.

Factories:

- :func:`build_torchvision_resnet` — the paper's networks (torchvision ``resnet18``/``resnet34``)
  with the stem adapted to the input: ``"cifar"`` = 3x3 stride-1 convolution and no max-pool
  (the usual choice for 28x28 / 32x32 images), ``"imagenet"`` = torchvision's 7x7 stride-2 stem.
- :func:`build_small_resnet` — narrow ResNets for CPU presets: a conv/BN/ReLU stem, stages of
  torchvision :class:`~torchvision.models.resnet.BasicBlock` (stride 2 between stages), global
  average pooling and a linear head.
- :func:`build_cifar_vgg` — torchvision ``vgg11_bn``/``vgg16_bn``/... for 32x32 inputs: the same
  convolution stages, then global average pooling and one linear layer (the usual CIFAR head;
  torchvision's 4096-wide classifier is made for 224x224 inputs).
- :func:`build_small_vgg` — narrow VGG-style networks for CPU presets: stages of 3x3 conv/BN/ReLU
  layers, each closed by a 2x2 max-pool, then global average pooling and a linear head.

:class:`InputNormalization` wraps a model so that it takes uint8 images (ImageNet's in-memory pool).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torchvision.models import resnet, vgg
from torchvision.models.resnet import BasicBlock, conv1x1

_TORCHVISION_RESNETS = {18: resnet.resnet18, 34: resnet.resnet34}
_TORCHVISION_VGGS_BN = {11: vgg.vgg11_bn, 13: vgg.vgg13_bn, 16: vgg.vgg16_bn, 19: vgg.vgg19_bn}


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


def build_cifar_vgg(depth: int, num_classes: int) -> vgg.VGG:
    """torchvision VGG-``depth`` with batch norm (random init) for 32x32 RGB inputs.

    The five conv stages (13 conv/BN pairs for VGG-16, each stage closed by a max-pool) are
    torchvision's; after them a 32x32 input is 1x1x512, so the head is global average pooling and
    ``Linear(512, num_classes)`` instead of the three 4096-wide layers made for 224x224 ImageNet.
    Batch norm is the standard choice on CIFAR: plain VGG-16 trains poorly with Adam at the
    initial learning rates of Table 5.

    :param depth: 11, 13, 16 or 19.
    :param num_classes: size of the classification head.
    """
    if depth not in _TORCHVISION_VGGS_BN:
        raise ValueError(f"depth must be one of {sorted(_TORCHVISION_VGGS_BN)}, got {depth}")
    model = _TORCHVISION_VGGS_BN[depth](weights=None, num_classes=num_classes)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Linear(512, num_classes)
    return model


def build_small_vgg(stages: Sequence[Sequence[int]], in_channels: int, num_classes: int) -> nn.Sequential:
    """A narrow VGG: ``stages`` of 3x3 conv (no bias) / BN / ReLU layers, one per width, each stage
    closed by a 2x2 max-pool; then global average pooling and a linear head.

    ``build_small_vgg(((16,), (32,), (64, 64)), 3, 10)`` maps ``(B, 3, 32, 32)`` to logits ``(B, 10)``
    through 4 convolutions at 32, 16, 8 and 8 pixels. The graph builder cuts it into one block per
    stage (:func:`gns_env.graph.build_graph`), like VGG-16's ``features``.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for widths in stages:
        for width in widths:
            conv = nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False)
            layers += [conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


class InputNormalization(nn.Module):
    """``model((x / 255 - mean) / std)`` for uint8 (or [0, 255] float) images ``(B, C, H, W)``.

    Parameter-free, so the operator graph of the wrapped model is unchanged (node names gain the
    prefix ``model.``).
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images.float() - self.mean) / self.std)
