import os

import gymnasium as gym
import pytest

import gns_env  # noqa: F401  (registers the IDs)
from gns_env.data import DatasetError, load_fashion_mnist


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
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have Fashion-MNIST: {err}")
        pytest.skip(f"real Fashion-MNIST not available: {err}")
