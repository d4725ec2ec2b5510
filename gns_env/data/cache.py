"""Where loaders keep what they download, unpack or decode."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Folder for unpacked, downloaded or decoded datasets (``$GNS_CACHE_DIR`` or ``~/.cache/gns_env``)."""
    return Path(os.environ.get("GNS_CACHE_DIR", Path.home() / ".cache" / "gns_env"))
