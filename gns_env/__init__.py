"""gns-env: learning-rate scheduling as Gymnasium environments with graph observations.

``import gns_env`` registers every ID of :data:`gns_env.tasks.PRESETS`; nothing is loaded or
built until ``gym.make``.
"""

from gymnasium.envs.registration import register, registry

from gns_env.graph import ModelGraph, build_graph
from gns_env.rewards import spread_rewards
from gns_env.spaces import to_pyg
from gns_env.tasks import PRESETS, TaskSpec

__version__ = "0.1.0"

for _env_id in PRESETS:
    if _env_id not in registry:
        # No PassiveEnvChecker: gymnasium 1.4's breaks every later step once a first reset has raised
        # (its stored reset data stays None); the test suite runs gymnasium's full check_env instead.
        register(id=_env_id, entry_point="gns_env.env:LRSchedulingEnv", kwargs={"task": _env_id}, disable_env_checker=True)

__all__ = ["PRESETS", "ModelGraph", "TaskSpec", "build_graph", "spread_rewards", "to_pyg"]
