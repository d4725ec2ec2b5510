"""Vectorised training envs: several episodes in parallel without oversubscribing the cores."""

from __future__ import annotations

import os

import gymnasium as gym
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv


def threads_per_worker(n_envs: int) -> int:
    """CPU threads each of ``n_envs`` worker processes may use (at least 1)."""
    return max(1, (os.cpu_count() or 1) // n_envs)


def make_training_vec_env(env_id: str, env_kwargs: dict, n_envs: int, seed: int) -> VecEnv:
    """``n_envs`` copies of ``env_id``: a ``DummyVecEnv`` for one, else a ``SubprocVecEnv`` whose
    workers each set ``torch.set_num_threads`` to their share of the cores (otherwise every
    worker starts one thread per core and they fight over them).

    :param env_kwargs: overrides passed to every ``gym.make``.
    :param seed: env ``i`` is seeded with ``seed + i`` (SB3's convention).
    """
    threads = threads_per_worker(n_envs)

    def make_env() -> gym.Env:
        import gns_env  # noqa: F401  (a fresh worker process must register the GNS/ IDs too)

        if n_envs > 1:
            torch.set_num_threads(threads)
        return gym.make(env_id, **env_kwargs)

    # A factory (not the ID string) so SB3 does not ask for render_mode="rgb_array".
    vec_cls = SubprocVecEnv if n_envs > 1 else DummyVecEnv
    return make_vec_env(make_env, n_envs=n_envs, seed=seed, vec_env_cls=vec_cls)
