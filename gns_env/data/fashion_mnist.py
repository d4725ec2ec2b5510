"""Fashion-MNIST through torchvision, offline-first.

Where the four IDX files are looked for, in order:

1. ``data_dir`` when given (else ``$GNS_DATA_DIR`` when set): the files themselves (``.gz`` or
   not) in that folder or in ``<dir>/FashionMNIST/raw`` (torchvision's layout);
2. ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``);
3. otherwise torchvision downloads them (needs internet): into ``data_dir`` / ``$GNS_DATA_DIR``
   when that folder exists (a folder that does not exist is an error, never created), else
   into the cache folder (``$GNS_CACHE_DIR``, default ``~/.cache/gns_env``).

Compressed files are unpacked once into the cache so torchvision's own reader parses them.
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
from pathlib import Path

import torch
from torch.utils.data import TensorDataset
from torchvision.datasets import FashionMNIST

from gns_env.data.cache import cache_dir
from gns_env.data.errors import DatasetError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
HOW_TO_GET = (
    "Get Fashion-MNIST with `apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu), or put "
    "the four files (train-images-idx3-ubyte.gz, ...) in a folder and pass data_dir=... or set "
    "GNS_DATA_DIR, or run once with internet so torchvision can download them."
)


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        for path in (candidate, folder / "FashionMNIST" / "raw" / candidate.name):
            if path.is_file():
                return path
    return None


def _stage_for_torchvision(files: list[Path], root: Path) -> None:
    """Place ``files`` uncompressed under ``root/FashionMNIST/raw`` (torchvision's layout)."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = raw / path.name.removesuffix(".gz")
        if target.is_file() and target.stat().st_mtime >= path.stat().st_mtime:
            continue
        tmp = target.with_suffix(".partial")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError) as err:
            tmp.unlink(missing_ok=True)
            raise DatasetError(f"Fashion-MNIST file {path} is unreadable or truncated ({err}). {HOW_TO_GET}") from err
        tmp.replace(target)


def load_fashion_mnist(split: str, data_dir: str | None = None) -> TensorDataset:
    """Fashion-MNIST ``split`` ("train": 60k, "test": 10k) as uint8 images ``(N, 1, 28, 28)``
    and int64 labels ``(N,)``. Cached per process and folder (``data_dir``, else
    ``$GNS_DATA_DIR``, read at every call); raises :class:`DatasetError` with the fix when the
    files cannot be found, read or downloaded."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _load_fashion_mnist(split, data_dir or os.environ.get("GNS_DATA_DIR"), cache_dir())


@functools.lru_cache(maxsize=4)
def _load_fashion_mnist(split: str, explicit: str | None, root: Path) -> TensorDataset:
    folders = [Path(explicit).expanduser()] if explicit else [DEBIAN_DIR]
    for folder in folders:
        # torchvision's reader insists on all four files, whichever split is asked for.
        found = [_find_file(folder, name) for names in FILES.values() for name in names]
        if all(found):
            _stage_for_torchvision(found, root)
            break
    else:
        if explicit and not folders[0].is_dir():
            raise DatasetError(f"Fashion-MNIST folder {folders[0]} does not exist. {HOW_TO_GET}")
        root = folders[0] if explicit else root
        try:
            FashionMNIST(str(root), train=split == "train", download=True)
        except Exception as err:  # torchvision raises URLError, RuntimeError, ... when offline
            searched = ", ".join(str(f) for f in folders)
            reason = " ".join(str(err).split())  # torchvision's message spans several lines
            raise DatasetError(
                f"Fashion-MNIST {split} files not found in {searched} and the download into {root} "
                f"failed ({type(err).__name__}: {reason}). {HOW_TO_GET}"
            ) from err
    try:
        dataset = FashionMNIST(str(root), train=split == "train", download=False)
    except Exception as err:  # torchvision's IDX reader raises on a corrupt or truncated file
        raise DatasetError(f"Fashion-MNIST files under {root} could not be read ({err}). {HOW_TO_GET}") from err
    expected = 60000 if split == "train" else 10000
    if len(dataset.targets) != expected:
        raise DatasetError(
            f"Fashion-MNIST {split} under {root} has {len(dataset.targets)} images, expected {expected}. {HOW_TO_GET}"
        )
    return TensorDataset(dataset.data.unsqueeze(1), dataset.targets.to(torch.int64))
