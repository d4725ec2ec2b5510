"""Image folders in torchvision's ``ImageFolder`` layout (``<folder>/<class>/<image>``), decoded once.

:func:`read_image_folder` lists the folder with :class:`torchvision.datasets.ImageFolder` (classes
= sorted sub-folder names), decodes every image with ImageFolder's PIL loader (``torchvision.io``'s
decoders are deprecated since torchvision 0.29) into one uint8 tensor, and keeps that tensor in
the cache folder (``$GNS_CACHE_DIR``, default ``~/.cache/gns_env``) under a key made of the
folder's absolute path, the image size and the name, size and modification time of every file.
A later load, in this process or another, reads that one file instead of decoding again; adding,
removing or rewriting an image decodes the folder again.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from PIL import UnidentifiedImageError
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import pil_loader
from torchvision.transforms.v2 import functional as TF

from gns_env.data.cache import cache_dir
from gns_env.data.errors import DatasetError

_FORMAT = 2  # bump when the cached content changes meaning
#: Folders with more images than this are decoded by worker processes (when there are >= 4 cores).
PARALLEL_DECODE_FROM = 50_000


def read_image_folder(
    folder: Path, image_size: int, resize: bool = False, what: str = "images", how_to_get: str = ""
) -> tuple[TensorDataset, tuple[str, ...]]:
    """Every image under ``folder`` as uint8 ``(N, 3, image_size, image_size)`` (RGB) with int64
    labels ``(N,)`` (in sorted-file order), and the class names (sorted sub-folder names).

    :param image_size: the side of the square images.
    :param resize: ``True``: resize the shorter side to ``image_size`` and centre-crop; ``False``:
        an image of another size is an error.
    :param what: the data's name in error messages ("CIFAR-10 train").
    :param how_to_get: appended to every error message.
    :raises DatasetError: the folder has no class folders or images, or an image cannot be decoded.
    """
    try:
        listing = ImageFolder(str(folder))
    except (FileNotFoundError, NotADirectoryError, OSError) as err:
        raise DatasetError(f"{what}: {err}. {how_to_get}".strip()) from err
    paths = [path for path, _ in listing.samples]
    labels = torch.tensor([label for _, label in listing.samples], dtype=torch.int64)
    cache = cache_dir() / "image_folders" / f"{_fingerprint(folder, paths, image_size, resize)}.pt"
    images = _read_cache(cache, len(paths), image_size)
    if images is None:
        images = _decode_all(paths, image_size, resize, what, how_to_get)
        _write_cache(cache, images)
    return TensorDataset(images, labels), tuple(listing.classes)


def _fingerprint(folder: Path, paths: list[str], image_size: int, resize: bool) -> str:
    digest = hashlib.sha256(f"{_FORMAT}\0{Path(folder).resolve()}\0{image_size}\0{resize}\n".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.relpath(path, folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _read_cache(path: Path, count: int, image_size: int) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        images = torch.load(path, weights_only=True)["images"]
    except Exception:  # a truncated or foreign file: decode again and overwrite it
        return None
    if not isinstance(images, torch.Tensor) or images.shape != (count, 3, image_size, image_size):
        return None
    return images


def _write_cache(path: Path, images: torch.Tensor) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"images": images}, tmp)
        tmp.replace(path)
    except OSError as err:  # a read-only cache only costs decoding again next time
        tmp.unlink(missing_ok=True)
        warnings.warn(f"could not cache the decoded images in {path} ({err}); they will be decoded again next time")


def _decode(path: str, image_size: int, resize: bool, what: str = "images", how_to_get: str = "") -> torch.Tensor:
    """One image file as uint8 ``(3, image_size, image_size)``."""
    try:
        image = TF.pil_to_tensor(pil_loader(path))  # RGB, (3, H, W) uint8
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DatasetError(f"{what}: {path} could not be decoded ({err}). {how_to_get}".strip()) from err
    if image.shape[1:] == (image_size, image_size):
        return image
    if not resize:
        size = f"{image.shape[2]}x{image.shape[1]}, expected {image_size}x{image_size}"
        raise DatasetError(f"{what}: {path} is {size}. {how_to_get}".strip())
    image = TF.resize(image, image_size, antialias=True)  # shorter side -> image_size
    return TF.center_crop(image, [image_size, image_size])


class _Decoder(Dataset):
    def __init__(self, paths: list[str], *args) -> None:
        self.paths, self.args = paths, args

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return _decode(self.paths[index], *self.args)


def _decode_all(paths: list[str], image_size: int, resize: bool, what: str, how_to_get: str) -> torch.Tensor:
    images = torch.empty((len(paths), 3, image_size, image_size), dtype=torch.uint8)
    workers = min(8, (os.cpu_count() or 1) - 1)
    if len(paths) <= PARALLEL_DECODE_FROM or workers < 3:
        for index, path in enumerate(paths):
            images[index] = _decode(path, image_size, resize, what, how_to_get)
        return images
    loader = DataLoader(_Decoder(paths, image_size, resize, what, how_to_get), batch_size=256, num_workers=workers)
    start = 0
    for batch in loader:
        images[start : start + len(batch)] = batch
        start += len(batch)
    return images
