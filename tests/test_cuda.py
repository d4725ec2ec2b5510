"""The GPU path: envs and agents on CUDA, bf16 autocast. Runs only where CUDA exists."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import gns_env  # noqa: F401  (registers the IDs)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_auto_device_picks_what_exists(debug_env):
    env = debug_env(device="auto")
    env.reset(seed=0)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(env.unwrapped._trainer.model.parameters()).device.type == expected


def test_cuda_without_a_gpu_is_one_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        gym.make("GNS/Debug-v0", device="cuda")


@cuda
def test_an_episode_on_cuda_replays_and_matches_the_contract(debug_env):
    def run():
        env = debug_env(device="cuda")
        observation, info = env.reset(seed=0)
        lrs, done = [info["lr"]], False
        while not done:
            observation, _, done, _, info = env.step(np.ones(1, np.float32))
            lrs.append(info["lr"])
            assert all(isinstance(v, np.ndarray) and np.isfinite(v).all() for v in observation.values())
        return lrs, info["val_metric"], env.unwrapped.evaluate_test()

    assert run() == run()


@cuda
def test_agent_on_cuda_trains_and_acts(debug_env, tmp_path):
    from agents.training import train_agent

    summary = train_agent("GNS/Debug-v0", {"device": "cuda"}, episodes=2, out=tmp_path, device="cuda", verbose=0)
    from agents.ppo import GNSPPO

    agent = GNSPPO.load(summary["agent"], device="cuda")
    observation, _ = debug_env(device="cuda").reset(seed=1)
    action, _ = agent.predict(observation, deterministic=True)
    assert agent.device.type == "cuda" and -1 <= float(action[0]) <= 1


@cuda
def test_bf16_on_cuda_steps_a_tiny_roberta():
    env = gym.make("GNS/GLUE-RTE-RoBERTaBase-v0", device="cuda", precision="bf16", pretrained=False,
                   model_config={"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2,
                                 "intermediate_size": 64}, total_steps=4, decision_interval=2, batch_size=4,
                   val_size=8, max_seq_length=32, tokenizer="minilm-l6")  # fmt: skip
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(1, np.float32))
    assert np.isfinite(info["train_loss"])
