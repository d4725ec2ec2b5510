"""ImageNet (ILSVRC-2012) from a folder you supply; it is never downloaded.

The folder is ``data_dir``, else ``$GNS_IMAGENET_DIR``, in torchvision's ``ImageNet`` /
``ImageFolder`` layout: ``<folder>/train/<wnid>/*.JPEG`` and ``<folder>/val/<wnid>/*.JPEG``
(``torchvision.datasets.ImageNet(folder, split=...)`` unpacks the official archives into it).
``val`` is the test split; validation is drawn from ``train`` like every other task.

The environment holds its training pool in memory, so images are decoded once at
``IMAGENET_IMAGE_SIZE`` (shorter side resized, centre crop: "downsampled ImageNet") and kept as
uint8 — 1.28 M images x 3 x 64 x 64 is about 16 GB — and cached on disk like every image folder
(:mod:`gns_env.data.image_folder`). The model normalises its uint8 input itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import TensorDataset
from torchvision.datasets.folder import find_classes

from gns_env.data.errors import DatasetError
from gns_env.data.image_folder import read_image_folder

IMAGENET_IMAGE_SIZE = 64
IMAGENET_CLASSES = 1000
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SPLIT_FOLDERS = {"train": "train", "test": "val"}
HOW_TO_GET = (
    "ImageNet cannot be downloaded automatically: get ILSVRC-2012 from https://image-net.org, unpack it "
    "into <folder>/train/<wnid>/*.JPEG and <folder>/val/<wnid>/*.JPEG (torchvision.datasets.ImageNet(<folder>, "
    "split='train' / 'val') does this from the official archives), and pass data_dir=<folder> or set GNS_IMAGENET_DIR."
)


def load_imagenet(split: str, data_dir: str | None = None) -> TensorDataset:
    """ImageNet ``split`` (``"train"``, or ``"test"`` = the ``val`` folder) as uint8 images
    ``(N, 3, 64, 64)`` and int64 labels ``(N,)`` (class = index of the sorted wnid folders).

    :raises DatasetError: naming ``data_dir`` / ``GNS_IMAGENET_DIR``, when the folder is not set,
        missing, or not in the expected layout.
    """
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    value = data_dir or os.environ.get("GNS_IMAGENET_DIR")
    if not value:
        raise DatasetError(f"ImageNet needs a folder: neither data_dir nor GNS_IMAGENET_DIR is set. {HOW_TO_GET}")
    folder = Path(value).expanduser()
    what = f"ImageNet {SPLIT_FOLDERS[split]} ({folder / SPLIT_FOLDERS[split]})"
    if not (folder / SPLIT_FOLDERS[split]).is_dir():
        problem = "does not exist" if not folder.is_dir() else f"has no {SPLIT_FOLDERS[split]}/ folder"
        raise DatasetError(f"ImageNet folder {folder} {problem}. {HOW_TO_GET}")
    data, classes = read_image_folder(folder / SPLIT_FOLDERS[split], IMAGENET_IMAGE_SIZE, True, what, HOW_TO_GET)
    if len(classes) > IMAGENET_CLASSES:
        raise DatasetError(
            f"{what} has {len(classes)} class folders, more than ImageNet's {IMAGENET_CLASSES}. {HOW_TO_GET}"
        )
    if split == "test" and (folder / "train").is_dir() and tuple(find_classes(str(folder / "train"))[0]) != classes:
        raise DatasetError(f"{what}: the class folders differ from those of {folder / 'train'}. {HOW_TO_GET}")
    return data
