"""CIFAR-10 and CIFAR-100 through torchvision, offline-first.

The folder is the first of ``data_dir``, ``$GNS_CIFAR10_DIR`` (CIFAR-10 only) and
``$GNS_DATA_DIR`` that is set, else the cache folder (``$GNS_CACHE_DIR``, default
``~/.cache/gns_env``). A named folder that does not exist is an error, never created. From it,
in order:

1. torchvision's files: ``<folder>/cifar-10-batches-py`` (``cifar-100-python``), or the folder
   is that one; read by torchvision's :class:`~torchvision.datasets.CIFAR10` /
   :class:`~torchvision.datasets.CIFAR100`, which checks every file's md5;
2. an ``ImageFolder`` copy: ``<folder>/train/<class>/*`` and ``<folder>/test/<class>/*``
   (32x32 JPEG, PNG, ...; classes = sorted folder names, which for CIFAR's class names is the
   official label order), decoded once and cached (:mod:`gns_env.data.image_folder`);
3. otherwise torchvision downloads the archive into the folder (needs internet).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import TensorDataset
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.folder import find_classes

from gns_env.data.cache import cache_dir
from gns_env.data.errors import DatasetError
from gns_env.data.image_folder import read_image_folder


@dataclass(frozen=True)
class CifarInfo:
    """One CIFAR variant.

    :param title: its name in messages.
    :param reader: the torchvision dataset class.
    :param num_classes: classes (10 or 100).
    :param env_var: the environment variable naming its own folder (``None``: only ``$GNS_DATA_DIR``).
    :param mean: per-channel mean of the training images in [0, 1] (normalisation).
    :param std: per-channel standard deviation.
    """

    title: str
    reader: type[CIFAR10]
    num_classes: int
    env_var: str | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def how_to_get(self) -> str:
        own = f"set {self.env_var} or " if self.env_var else ""
        return (
            f"Run once with internet so torchvision downloads {self.title} (into data_dir, $GNS_DATA_DIR or "
            f"$GNS_CACHE_DIR), or {own}pass data_dir=... naming a folder that holds torchvision's "
            f"{self.reader.base_folder}/ or an ImageFolder copy (train/<class>/*.jpg and test/<class>/*.jpg)."
        )


CIFAR: dict[str, CifarInfo] = {
    "cifar10": CifarInfo(
        "CIFAR-10", CIFAR10, 10, "GNS_CIFAR10_DIR", mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)
    ),
    "cifar100": CifarInfo(
        "CIFAR-100", CIFAR100, 100, None, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)
    ),
}
CIFAR_IMAGE_SIZE = 32


def locate_cifar(name: str, data_dir: str | None = None) -> tuple[Path, str]:
    """The folder ``name`` is read from and the setting that chose it (for messages)."""
    info = _info(name)
    candidates = [("data_dir", data_dir)]
    if info.env_var:
        candidates.append((f"${info.env_var}", os.environ.get(info.env_var)))
    candidates.append(("$GNS_DATA_DIR", os.environ.get("GNS_DATA_DIR")))
    for setting, value in candidates:
        if value:
            return Path(value).expanduser(), setting
    return cache_dir(), "the cache folder"


def load_cifar(name: str, split: str, data_dir: str | None = None) -> TensorDataset:
    """CIFAR ``name`` (``"cifar10"``, ``"cifar100"``) ``split`` (``"train"``, ``"test"``) as uint8
    images ``(N, 3, 32, 32)`` (RGB) and int64 labels ``(N,)``.

    :raises DatasetError: with the fix, when the files cannot be found, read or downloaded.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    info = _info(name)
    folder, setting = locate_cifar(name, data_dir)
    base = info.reader.base_folder
    if folder.name == base and folder.is_dir():  # pointed at cifar-10-batches-py itself
        folder = folder.parent
    if (folder / base).is_dir():
        return _read_torchvision(info, folder, split)
    if (folder / "train").is_dir():
        return _read_image_folder(info, folder, split)
    if setting != "the cache folder" and not folder.is_dir():
        raise DatasetError(f"{info.title} folder {folder} (from {setting}) does not exist. {info.how_to_get}")
    try:
        info.reader(str(folder), train=split == "train", download=True)
    except Exception as err:  # torchvision raises URLError, RuntimeError, ... when offline
        raise DatasetError(
            f"{info.title} not found in {folder} (from {setting}): it holds neither {base}/ nor train/ and "
            f"test/ class folders, and the download into it failed ({type(err).__name__}: {_one_line(err)}). "
            f"{info.how_to_get}"
        ) from err
    return _read_torchvision(info, folder, split)


def _info(name: str) -> CifarInfo:
    if name not in CIFAR:
        raise ValueError(f"unknown CIFAR dataset {name!r}; known: {', '.join(CIFAR)}")
    return CIFAR[name]


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())  # torchvision's messages span several lines


def _read_torchvision(info: CifarInfo, folder: Path, split: str) -> TensorDataset:
    try:
        dataset = info.reader(str(folder), train=split == "train", download=False)
    except Exception as err:  # torchvision: "Dataset not found or corrupted" (md5), or an unpickling error
        raise DatasetError(
            f"{info.title} files under {folder / info.reader.base_folder} are missing, incomplete or corrupted "
            f"(torchvision checks the md5 of every file: {_one_line(err)}). {info.how_to_get}"
        ) from err
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    if len(dataset.classes) != info.num_classes or (len(labels) and int(labels.max()) >= info.num_classes):
        raise DatasetError(
            f"{info.title} under {folder} has {len(dataset.classes)} classes, expected {info.num_classes}. "
            f"{info.how_to_get}"
        )
    return TensorDataset(images, labels)


def _read_image_folder(info: CifarInfo, folder: Path, split: str) -> TensorDataset:
    what = f"{info.title} {split} ({folder / split})"
    if not (folder / split).is_dir():
        raise DatasetError(f"{what}: the folder is missing next to {folder / 'train'}. {info.how_to_get}")
    data, classes = read_image_folder(folder / split, CIFAR_IMAGE_SIZE, False, what, info.how_to_get)
    if len(classes) != info.num_classes:
        raise DatasetError(
            f"{what} has {len(classes)} class folders, expected {info.num_classes}. {info.how_to_get}"
        )
    other = "test" if split == "train" else "train"
    if (folder / other).is_dir() and tuple(find_classes(str(folder / other))[0]) != classes:
        raise DatasetError(f"{what}: the class folders differ from those of {folder / other}. {info.how_to_get}")
    return data
