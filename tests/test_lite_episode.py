"""Full episodes on real Fashion-MNIST (about a minute each): `make test-slow`."""

import gymnasium as gym
import numpy as np
import pytest

from agents.apply import run_episode
from agents.ppo import make_gns_ppo

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fashion_mnist")]


def test_lite_episode_with_a_constant_lr_clearly_beats_80_percent():
    env = gym.make("GNS/FashionMNIST-Lite-v0")
    record = run_episode(env, seed=0, options={"initial_lr": 1e-3})
    env.close()
    assert not record.diverged
    assert record.steps[-1] == 420 and len(record.steps) == 21
    assert record.final_val_metric > 0.84


def test_one_ppo_episode_on_the_lite_env():
    env = gym.make("GNS/FashionMNIST-Lite-v0")
    agent = make_gns_ppo(env, seed=0, n_epochs=2)
    agent.learn(total_timesteps=env.unwrapped.task.num_decisions)
    rewards = agent.rollout_buffer.rewards[:, 0]
    assert np.isfinite(rewards).all() and agent.rollout_buffer.segment_ends[-1, 0]
    env.close()
