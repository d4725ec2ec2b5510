import gc
import math
import os
import weakref

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gns_env.env as env_module
from gns_env.graph.features import SMALLEST_OBSERVED_LR
from gns_env.tasks import OVERRIDABLE, PRESETS


def rollout(env, seed, actions, options=None):
    observation, info = env.reset(seed=seed, options=options)
    observations, rewards, infos = [observation], [], [info]
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(np.array([action], np.float32))
        observations.append(observation)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return observations, rewards, infos


def assert_same_observations(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_check_env_passes(debug_env):
    check_env(debug_env().unwrapped)
    env = debug_env(render_mode="ansi")
    env.reset(seed=0)
    assert env.render().startswith("step 2/8  lr ")


def test_every_registered_id_is_a_preset():
    registered = {env_id for env_id in gym.registry if env_id.startswith("GNS/")}
    assert registered == set(PRESETS)


def test_episode_contract(debug_env):
    env = debug_env(val_prob=0.0)
    task = env.unwrapped.task
    observations, rewards, infos = rollout(env, 0, [0.0] * 10)
    assert len(rewards) == task.num_decisions == 3
    assert infos[0]["step"] == task.decision_interval and infos[-1]["step"] == task.total_steps
    assert [info["validated"] for info in infos[1:]] == [False, False, True]  # only the last (p = 0)
    assert rewards[:2] == [0.0, 0.0]
    assert rewards[-1] == pytest.approx(infos[-1]["val_metric"] - infos[0]["val_metric"])
    for observation in observations:
        assert env.observation_space.contains(observation)
        assert all(np.isfinite(v).all() for v in observation.values())
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1, np.float32))


def test_observation_shape_is_stable_across_steps_and_episodes(debug_env):
    env = debug_env()
    shapes = {tuple((k, v.shape) for k, v in obs.items()) for s in (0, 1) for obs in rollout(env, s, [1, -1, 0.5])[0]}
    assert len(shapes) == 1
    observation = rollout(env, 0, [])[0][0]
    n = env.unwrapped.graph.num_nodes
    assert observation["node_mask"].sum() == n and observation["x"][n:].sum() == 0
    assert observation["edge_mask"].sum() == env.unwrapped.graph.num_edges


def test_dense_rewards_sum_to_the_metric_change(debug_env):
    env = debug_env(val_prob=1.0)
    _, rewards, infos = rollout(env, 3, [0.2, -0.3, 1.0])
    assert all(info["validated"] for info in infos)
    assert sum(rewards) == pytest.approx(infos[-1]["val_metric"] - infos[0]["val_metric"])


def test_actions_scale_the_learning_rate_within_bounds(debug_env):
    env = debug_env(lr_bounds=(1e-6, 0.05))
    _, _, infos = rollout(env, 0, [1.0, 5.0, -1.0], options={"initial_lr": 0.04})
    lrs = [info["lr"] for info in infos]
    assert lrs[0] == 0.04
    assert lrs[1] == pytest.approx(0.044)
    assert lrs[2] == pytest.approx(0.0484)  # 5.0 is clipped to 1.0
    assert lrs[3] == pytest.approx(0.0484 * 0.9)
    env.reset(seed=0)
    for bad in (np.array([np.nan], np.float32), np.array([np.inf]), np.zeros(2)):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)


def test_same_seed_replays_the_same_trajectory(debug_env):
    env = debug_env(val_prob=0.5)
    actions = [0.3, -0.7, 1.0]
    first = rollout(env, 42, actions)
    second = rollout(env, 42, actions)  # same env, reset twice
    third = rollout(debug_env(val_prob=0.5), 42, actions)  # a fresh env
    for other in (second, third):
        assert_same_observations(first[0], other[0])
        assert first[1] == other[1]
        assert [i["validated"] for i in first[2]] == [i["validated"] for i in other[2]]
    different = rollout(env, 43, actions)
    assert not np.array_equal(first[0][0]["x"], different[0][0]["x"])


def test_reset_does_not_touch_the_global_torch_rng(debug_env):
    import torch

    env = debug_env()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    rollout(env, 5, [0.0])
    assert torch.equal(torch.rand(3), expected)


def test_huge_learning_rate_diverges_cleanly_and_the_env_resets(debug_env):
    env = debug_env(lr_bounds=(1e-6, 1e6), initial_lr_range=(1e-3, 1e-2), divergence_penalty=2.0)
    observation, info = env.reset(seed=0, options={"initial_lr": 1e5})
    observations, rewards, infos = [observation], [], [info]
    terminated = False
    while not terminated:
        observation, reward, terminated, truncated, info = env.step(np.ones(1, np.float32))
        observations.append(observation)
        rewards.append(reward)
        infos.append(info)
    assert infos[-1]["diverged"] and not truncated
    assert rewards[-1] == -2.0
    assert len(rewards) < env.unwrapped.task.num_decisions or infos[-1]["step"] == env.unwrapped.task.total_steps
    for observation in observations:
        assert all(np.isfinite(v).all() for v in observation.values())
        assert env.observation_space.contains(observation)
    _, info = env.reset(seed=0)
    assert not info["diverged"] and np.isfinite(info["train_loss"])


def test_lr_schedule_option_sets_every_step(debug_env):
    env = debug_env()
    _, _, infos = rollout(env, 0, [1.0] * 3, options={"lr_schedule": lambda t: 0.01 / (t + 1)})
    assert [info["lr"] for info in infos] == pytest.approx([0.01 / 2, 0.01 / 4, 0.01 / 6, 0.01 / 8])


@pytest.mark.parametrize("bad", [-1e-3, math.nan, math.inf, 1e300, 2.0, "0.01", True, None])
def test_a_schedule_returning_a_bad_lr_is_one_error_naming_the_step_and_ends_the_episode(debug_env, bad):
    env = debug_env()  # the very first reset fails: the env must still work after a good one
    with pytest.raises(ValueError, match=r"lr_schedule'\] returned .* at step 0: an LR must be a number in \[0, 1.0\]"):
        env.reset(seed=0, options={"lr_schedule": lambda t: bad})
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(1, np.float32))
    env.reset(seed=0, options={"lr_schedule": lambda t: 1e-2 if t < 4 else bad})  # bad from step 4, in step 2
    env.step(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="at step 4"):
        env.step(np.zeros(1, np.float32))
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(1, np.float32))
    _, info = env.reset(seed=0)  # the env itself is fine
    _, reward, _, _, info = env.step(np.zeros(1, np.float32))
    assert np.isfinite(info["train_loss"]) and np.isfinite(reward)


def test_an_lr_of_zero_is_observed_as_the_smallest_lr(debug_env):
    """A warmup schedule starts at 0; log10(0) must not reach the observation."""
    env = debug_env()
    observation, info = env.reset(seed=0, options={"lr_schedule": lambda t: 0.0})
    assert info["lr"] == 0.0 and observation["globals"][0] == pytest.approx(math.log10(SMALLEST_OBSERVED_LR))
    assert (observation["x"][observation["node_mask"] == 1, 9] == observation["globals"][0]).all()
    assert env.observation_space.contains(observation)


def test_the_test_split_is_never_loaded_by_episodes(debug_env, monkeypatch):
    loaded = []
    original = env_module.load_task_split
    monkeypatch.setattr(env_module, "load_task_split", lambda task, split: loaded.append(split) or original(task, split))
    env = debug_env(val_prob=1.0)
    rollout(env, 0, [0.0] * 3)
    assert loaded == ["train"]
    assert 0.0 <= env.unwrapped.evaluate_test() <= 1.0
    assert loaded == ["train", "test"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"not_a_field": 1}, "not_a_field"),
        ({"decision_interval": 0}, "decision_interval"),
        ({"decision_interval": 5}, "total_steps"),  # K > T / 2 for T = 8
        ({"total_steps": -1}, "total_steps"),
        ({"val_prob": 1.5}, "val_prob"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr_bounds": (-1e-3, 1.0)}, "lr_bounds"),
        ({"lr_bounds": [1e-3]}, r"lr_bounds=\[0.001\] is invalid"),
        ({"lr_bounds": ("low", "high")}, "lr_bounds="),
        ({"precision": "fp16"}, "use one of fp32, bf16$"),
        ({"initial_lr_range": (1e-2, 1e-3)}, "initial_lr_range"),
        ({"max_nodes": 5}, "max_nodes"),
        ({"max_edges": 3}, "max_edges"),
        ({"device": "tpu"}, "device"),
        ({"val_size": 10**6}, "val_size"),
        ({"val_prob": "abc"}, "val_prob='abc' is invalid"),  # a string, not a comparison error
        ({"divergence_factor": "2"}, "divergence_factor"),
        ({"action_scale": None}, "action_scale"),
        ({"max_seq_length": 12}, "max_seq_length applies to text tasks only"),
        ({"data_dir": "/nonexistent"}, "data_dir has no use here"),  # Debug generates its data
    ],
)
def test_invalid_kwargs_fail_at_make_naming_the_field(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        gym.make("GNS/Debug-v0", **kwargs)


def test_a_data_dir_that_is_not_a_path_is_named():
    with pytest.raises(ValueError, match="data_dir=123 is invalid; it must be a folder path or None"):
        gym.make("GNS/FashionMNIST-Lite-v0", data_dir=123)


def test_unknown_kwarg_lists_what_is_allowed():
    with pytest.raises(TypeError) as err:
        gym.make("GNS/Debug-v0", totl_steps=3)
    assert all(field in str(err.value) for field in OVERRIDABLE)


def test_unknown_env_id_suggests_close_matches():
    with pytest.raises(gym.error.Error, match="Debug"):
        gym.make("GNS/Debugg-v0")
    with pytest.raises(ValueError, match="Did you mean GNS/FashionMNIST-Lite-v0"):
        env_module.LRSchedulingEnv("GNS/FashionMNIST-Lite-v1")


def test_bad_reset_options(debug_env):
    env = debug_env()
    with pytest.raises(ValueError, match="initial_lr"):
        env.reset(seed=0, options={"initial_lr": -1.0})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=0, options={"lr": 0.1})


def test_close_frees_everything_and_can_be_called_twice(debug_env):
    env = debug_env()
    rollout(env, 0, [0.0])
    env.close()
    env.close()
    assert env.unwrapped._trainer is None and env.unwrapped._pool is None
    observations, _, _ = rollout(env, 0, [0.0])  # a reset after close reloads
    assert env.observation_space.contains(observations[-1])


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc (Linux)")
def test_200_reset_step_cycles_do_not_grow_memory(debug_env):
    env = debug_env()
    for seed in range(20):  # warm-up: allocator pools, lazily imported code
        rollout(env, seed, [0.0])
    before = _rss_kib()
    for seed in range(200):
        rollout(env, seed, [0.0])
    assert _rss_kib() < 1.05 * before
    # RSS is too coarse for a tiny network: also check that nothing holds the last episode's
    # network, optimizer or validation split once the next one starts.
    trainer = env.unwrapped._trainer
    old = [weakref.ref(x) for x in (trainer.model, trainer.optimizer, env.unwrapped._val, env.unwrapped._featurizer)]
    del trainer
    rollout(env, 1000, [0.0])
    gc.collect()
    assert [ref() is None for ref in old] == [True] * 4


@pytest.mark.usefixtures("fashion_mnist")
def test_lite_env_builds_on_real_fashion_mnist():
    env = gym.make("GNS/FashionMNIST-Lite-v0", total_steps=4, decision_interval=2, val_size=256)
    observation, info = env.reset(seed=0, options={"initial_lr": 1e-3})
    assert env.unwrapped.graph.num_repeated_blocks == 3
    assert info["val_metric"] > 0.0 and env.observation_space.contains(observation)
    env.close()


@pytest.mark.usefixtures("fashion_mnist")
def test_paper_resnet18_env_constructs_and_steps_at_reduced_size():
    env = gym.make("GNS/FashionMNIST-ResNet18-v0", total_steps=4, decision_interval=2, batch_size=8, val_size=64)
    task = env.unwrapped.task
    assert (PRESETS[task.env_id].total_steps, PRESETS[task.env_id].decision_interval) == (78200, 500)
    assert env.unwrapped.graph.num_nodes == 41
    _, info = env.reset(seed=0)
    assert 1e-3 <= info["lr"] <= 1e-1  # Table 5 range
    _, reward, terminated, _, info = env.step(np.zeros(1, np.float32))
    assert terminated and info["validated"] and np.isfinite(reward)
    env.close()
