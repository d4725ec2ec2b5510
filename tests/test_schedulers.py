import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.ppo import GNSPPO
from agents.schedulers import LEARNED_SCHEDULERS
from agents.state_extractors import ConcatenatedStateExtractor, LastLayerExtractor
from agents.training import has_checkpoint, prepare_training, train_agent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def batch(*observations):
    return {k: torch.as_tensor(np.stack([o[k] for o in observations])) for k in observations[0]}


def hand_padded(obs, num_nodes):
    """``obs`` cut to its first ``num_nodes`` nodes (and the edges among them), other features."""
    small = {k: v.copy() for k, v in obs.items()}
    small["x"][:num_nodes] = np.arange(num_nodes * small["x"].shape[1]).reshape(num_nodes, -1) / 7.0
    small["x"][num_nodes:] = 0
    small["node_mask"][num_nodes:] = 0
    small["block"][num_nodes:] = 0
    keep = (small["edge_index"] < num_nodes).all(axis=0) & (small["edge_mask"] > 0)
    edges = small["edge_index"][:, keep]
    small["edge_index"][:] = 0
    small["edge_index"][:, : edges.shape[1]] = edges
    small["edge_mask"][:] = 0
    small["edge_mask"][: edges.shape[1]] = 1
    return small


@pytest.fixture
def two_graphs(debug_env):
    env = debug_env()
    obs, _ = env.reset(seed=0)
    num_nodes = env.unwrapped.graph.num_nodes
    assert num_nodes > 5
    return env, obs, num_nodes, hand_padded(obs, 5)


def test_last_layer_extractor_reads_the_last_real_node(two_graphs):
    env, obs, num_nodes, small = two_graphs
    assert env.unwrapped.graph.node_names[-1] == "7"  # the Debug ResNet's final Linear
    extractor = LastLayerExtractor(env.observation_space)
    assert extractor.features_dim == obs["x"].shape[1]
    out = extractor(batch(obs, small))
    assert out.shape == (2, obs["x"].shape[1])
    torch.testing.assert_close(out[0], torch.as_tensor(obs["x"][num_nodes - 1]))
    torch.testing.assert_close(out[1], torch.as_tensor(small["x"][4]))


def test_concatenated_state_extractor_is_masked_x_flattened(two_graphs):
    env, obs, num_nodes, small = two_graphs
    small["x"][5:] = 9.0  # garbage in the padding must not leak through
    extractor = ConcatenatedStateExtractor(env.observation_space)
    max_nodes, num_features = obs["x"].shape
    assert extractor.features_dim == max_nodes * num_features
    out = extractor(batch(obs, small))
    assert out.shape == (2, max_nodes * num_features)
    torch.testing.assert_close(out[0], torch.as_tensor(obs["x"]).flatten())
    torch.testing.assert_close(out[1, : 5 * num_features], torch.as_tensor(small["x"][:5]).flatten())
    assert torch.all(out[1, 5 * num_features :] == 0)
    assert torch.all(out[0, num_nodes * num_features :] == 0)


@pytest.mark.parametrize("key", list(LEARNED_SCHEDULERS))
def test_every_scheduler_trains_saves_and_loads(key, tmp_path, debug_env):
    out = tmp_path / key
    short = {"total_steps": 4}  # one decision per episode: both episodes make one PPO update
    summary = train_agent("GNS/Debug-v0", short, scheduler=key, episodes=2, out=out, verbose=0)
    assert summary["scheduler"] == key and summary["agent"] == str(out / "agent.zip")
    assert summary["episodes"] == 2 and len(summary["final_val_metrics"]) == 2 and summary["seconds"] > 0
    episodes = json.loads((out / "episodes.json").read_text())
    assert [e["final_val_metric"] for e in episodes] == summary["final_val_metrics"]
    config = json.loads((out / "config.json").read_text())
    assert config["scheduler"] == key and config["scheduler_name"] == LEARNED_SCHEDULERS[key].name
    assert config["env_kwargs"] == {**short, **LEARNED_SCHEDULERS[key].train_env_kwargs}
    assert has_checkpoint(out)

    agent = GNSPPO.load(out / "agent.zip")
    action, _ = agent.predict(debug_env().reset(seed=5)[0])
    assert action.shape == (1,) and -1 <= action[0] <= 1
    extractor = agent.policy.features_extractor
    expected = LEARNED_SCHEDULERS[key].policy_kwargs["features_extractor_class"]
    assert type(extractor) is expected
    if key == "gat":
        from torch_geometric.nn import GATConv

        assert all(isinstance(conv, GATConv) for conv in extractor.convs)
    if key in ("frs", "srls"):
        assert config["env_kwargs"]["val_prob"] == 1.0


@pytest.mark.parametrize("key", ["frs", "srls"])
def test_dense_reward_schedulers_train_with_val_prob_1(key, tmp_path):
    run = prepare_training("GNS/Debug-v0", {"total_steps": 12}, scheduler=key, episodes=1, out=tmp_path)
    try:
        assert run.env_kwargs == {"total_steps": 12, "val_prob": 1.0}
        assert [task.val_prob for task in run.env.get_attr("task")] == [1.0]
    finally:
        run.close()
    assert not (tmp_path / "config.json").exists()  # preparing writes nothing


def test_a_conflicting_val_prob_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="val_prob"):
        train_agent("GNS/Debug-v0", {"val_prob": 0.2}, scheduler="frs", episodes=1, out=tmp_path)
    with pytest.raises(ValueError, match="unknown scheduler"):
        train_agent("GNS/Debug-v0", {}, scheduler="lstm", episodes=1, out=tmp_path)
    assert not any(tmp_path.iterdir())
    run = prepare_training("GNS/Debug-v0", {"val_prob": 1}, scheduler="srls", episodes=1, out=tmp_path)  # agrees
    run.close()


def test_resume_checks_the_checkpoint(tmp_path):
    assert not has_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="no checkpoint"):
        train_agent("GNS/Debug-v0", {}, scheduler="srls", out=tmp_path, resume=True)
    train_agent("GNS/Debug-v0", {}, scheduler="srls", episodes=1, out=tmp_path, verbose=0)
    for other in ("gns", "css", "frs"):  # FRS has GNS's state: the scheduler is what differs
        with pytest.raises(ValueError, match=f"scheduler: checkpoint 'srls', now '{other}'"):
            train_agent("GNS/Debug-v0", {}, scheduler=other, episodes=3, out=tmp_path, resume=True)
    with pytest.raises(ValueError, match="env_kwargs: checkpoint"):
        train_agent("GNS/Debug-v0", {"total_steps": 10}, scheduler="srls", episodes=3, out=tmp_path, resume=True)
    with pytest.raises(ValueError, match="seed: checkpoint 0, now 1"):
        train_agent("GNS/Debug-v0", {}, scheduler="srls", episodes=3, seed=1, out=tmp_path, resume=True)
    with pytest.raises(ValueError, match="holds another training run"):  # never overwritten
        train_agent("GNS/Debug-v0", {}, scheduler="gns", episodes=1, out=tmp_path)
    agent = (tmp_path / "agent.zip").read_bytes()
    again = train_agent("GNS/Debug-v0", {}, scheduler="srls", episodes=1, out=tmp_path, verbose=0)  # the same run
    assert again["episodes"] == 1 and (tmp_path / "agent.zip").read_bytes() == agent  # reported, not retrained
    with pytest.raises(ValueError, match="holds this training with 1 of the 2 episodes asked for: continue it with --resume"):
        train_agent("GNS/Debug-v0", {}, scheduler="srls", episodes=2, out=tmp_path)
    summary = train_agent("GNS/Debug-v0", {}, scheduler="srls", episodes=2, out=tmp_path, resume=True, verbose=0)
    assert summary["episodes"] == 2
    assert json.loads((tmp_path / "checkpoint.json").read_text())["episodes"] == 2


def test_cli_scheduler_option(tmp_path, capsys):
    import train_gns

    out = tmp_path / "run"
    argv = ["--env", "GNS/Debug-v0", "--episodes", "1", "--out", str(out), "--no-progress"]
    assert train_gns.main([*argv, "--scheduler", "srls"]) == 0
    assert json.loads((out / "config.json").read_text())["scheduler"] == "srls"
    assert "of SRLS" in capsys.readouterr().out
    import compare

    with pytest.raises(SystemExit) as exit_info:  # it would be labelled GNS in the table
        compare.main(["--agent", str(out / "agent.zip"), "--env", "GNS/Debug-v0", "--out", str(tmp_path / "cmp")])
    assert exit_info.value.code == 2 and "has a LastLayerExtractor state, not GNS's" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        train_gns.main([*argv, "--scheduler", "frs", "--env-kwargs", "val_prob=0.5"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error:") and "val_prob" in err
    with pytest.raises(SystemExit):
        train_gns.main([*argv, "--scheduler", "nope"])
    assert "invalid choice" in capsys.readouterr().err
