import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from gymnasium.utils import seeding

from agents.apply import state_value
from agents.dropin import GNSScheduler, initial_lr_scores, replay_schedule, select_initial_lr
from agents.ppo import make_gns_ppo
from gns_env.data.splits import load_task_split
from gns_env.models import build_model
from gns_env.spaces import graph_observation_space


class ScriptedAgent:
    """Plays a fixed action sequence (then 0) and keeps every observation it was shown."""

    def __init__(self, actions, observation_space=None):
        self.observation_space = observation_space or graph_observation_space(256, 1024)
        self.actions = list(actions)
        self.observations = []

    def predict(self, observation, deterministic=False):
        assert deterministic
        self.observations.append({k: v.copy() for k, v in observation.items()})
        i = len(self.observations) - 1
        return np.array([self.actions[i] if i < len(self.actions) else 0.0], np.float32), None


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def plain_loop(model, optimizer, scheduler, steps, seed=0, nan_at=None):
    """Train on a fixed random problem; returns the optimizer LR of every step and the losses."""
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 4, generator=generator), torch.randint(0, 3, (64,), generator=generator)
    used, losses = [], []
    for step in range(steps):
        rows = torch.arange(8 * step, 8 * step + 8) % 64
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[rows]), y[rows])
        loss.backward()
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        losses.append(loss.item())
        if scheduler is not None:
            scheduler.step(float("nan") if step == nan_at else loss)
    return used, losses


def test_lr_changes_exactly_every_k_steps_and_stops_at_t():
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    agent = ScriptedAgent([1.0, 1.0, 1.0, 1.0])
    scheduler = GNSScheduler(optimizer, agent, model, torch.zeros(2, 4), total_steps=10, decision_interval=3)
    used, losses = plain_loop(model, optimizer, scheduler, steps=13)
    assert used == scheduler.lrs == scheduler.export_schedule()
    assert [step for step, _, _ in scheduler.decisions] == [3, 6, 9]  # K, 2K, ... below T
    expected = [0.01] * 3 + [0.011] * 3 + [0.0121] * 3 + [0.01331] * 4  # nothing past T = 10
    assert used == pytest.approx(expected, rel=1e-12)
    changes = [i for i in range(1, len(used)) if used[i] != used[i - 1]]
    assert changes == [3, 6, 9]
    for decision, observation in enumerate(agent.observations):  # globals: log10 lr, window loss, t/T
        window = losses[3 * decision : 3 * decision + 3]
        np.testing.assert_allclose(
            observation["globals"], [math.log10(used[3 * decision]), math.log1p(np.mean(window)), (3 * decision + 3) / 10],
            rtol=1e-6,
        )
    assert scheduler.get_last_lr() == [scheduler.lr] and not scheduler.diverged


def test_another_scheduler_on_the_same_optimizer_is_caught():
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = GNSScheduler(optimizer, ScriptedAgent([]), model, torch.zeros(2, 4), 10, 2)
    optimizer.param_groups[0]["lr"] = 0.5
    with pytest.raises(RuntimeError, match="changed outside GNSScheduler"):
        scheduler.step(1.0)


def test_groups_with_different_lrs_need_an_initial_lr():
    model = mlp()
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1}, {"params": model[2].parameters()}], lr=0.2)
    with pytest.raises(ValueError, match="initial_lr"):
        GNSScheduler(optimizer, ScriptedAgent([]), model, torch.zeros(2, 4), 10, 2)
    GNSScheduler(optimizer, ScriptedAgent([]), model, torch.zeros(2, 4), 10, 2, initial_lr=0.05)
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.05]
    with pytest.raises(ValueError, match="lr_bounds"):
        GNSScheduler(optimizer, ScriptedAgent([]), model, torch.zeros(2, 4), 10, 2, initial_lr=5.0)


@pytest.mark.parametrize(
    ("steps", "kwargs", "message"),
    [
        ((5, 20), {}, r"total_steps=5 must be at least 2 x decision_interval \(40\)"),  # would never decide
        ((10, 0), {}, "decision_interval=0 must be a positive integer"),
        ((10, 2), {"lr_bounds": (1.0, 1e-3)}, r"lr_bounds=\(1.0, 0.001\) must be \(low, high\) with 0 < low <= high"),
        ((10, 2), {"lr_bounds": 1e-3}, "lr_bounds=0.001 must be a pair"),
        ((10, 2), {"action_scale": 2.0}, r"action_scale=2.0 must lie in \(0, 1\)"),
    ],
)
def test_bad_scheduler_settings_are_one_clear_error(steps, kwargs, message):
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=message):
        GNSScheduler(optimizer, ScriptedAgent([]), model, torch.zeros(2, 4), *steps, **kwargs)


def test_bad_replays_and_candidates_are_one_clear_error():
    optimizer = torch.optim.SGD(mlp().parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"schedule\[0\] = -1.0: every LR must be a finite number >= 0"):
        replay_schedule(optimizer, [-1.0, 0.1])
    with pytest.raises(ValueError, match="nan"):
        replay_schedule(optimizer, [0.1, math.nan])
    with pytest.raises(ValueError, match="no candidate initial LRs"):
        select_initial_lr(lambda lr: pytest.fail("nothing to run"), [])
    with pytest.raises(ValueError, match=r"candidate initial LRs \[-0.001, nan\] must be positive finite"):
        select_initial_lr(lambda lr: pytest.fail("checked before running"), [1e-3, -1e-3, math.nan])


def _env_rollout(env, seed, actions, initial_lr):
    observation, info = env.reset(seed=seed, options={"initial_lr": initial_lr})
    observations, lrs = [observation], [info["lr"]]
    for action in actions:
        observation, _, terminated, _, info = env.step(np.array([action], np.float32))
        observations.append(observation)
        lrs.append(info["lr"])
        if terminated:
            break
    return observations, lrs


def test_same_model_seed_and_actions_give_the_envs_observations_and_lrs(debug_env):
    env = debug_env(total_steps=9, val_prob=0.0)  # K = 2, T = 9: decisions at 2, 4, 6, 8 (the last runs 1 step)
    task = env.unwrapped.task
    seed, initial_lr, actions = 7, 0.004, [1.0, -0.6, 0.35, 1.0]
    env_observations, env_lrs = _env_rollout(env, seed, actions, initial_lr)
    assert len(env_observations) == 5 and len(set(env_lrs)) == 5

    # The same run by hand, from the seeds reset derives (model, batch order, validation split).
    rng, _ = seeding.np_random(seed)
    model_seed, order_seed = (int(s) for s in rng.integers(0, 2**62, size=2))
    pool = load_task_split(task, "train")
    train_index = torch.as_tensor(rng.permutation(len(pool)))[task.val_size :]
    with torch.random.fork_rng():
        torch.manual_seed(model_seed)
        model = build_model(task.model, task.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=initial_lr)
    agent = ScriptedAgent(actions)
    example_input = pool.tensors[0][:2]
    scheduler = GNSScheduler(optimizer, agent, model, example_input, task.total_steps, task.decision_interval)
    order_generator, steps = torch.Generator().manual_seed(order_seed), 0
    while steps < task.total_steps:
        order = torch.randperm(len(train_index), generator=order_generator)
        for start in range(0, len(order) - task.batch_size + 1, task.batch_size):
            if steps == task.total_steps:
                break
            images, labels = pool[train_index[order[start : start + task.batch_size]]]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            scheduler.step(loss)
            steps += 1

    assert len(agent.observations) == task.num_decisions == 4  # the env's final observation has no decision
    for ours, theirs in zip(agent.observations, env_observations):
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert not np.allclose(agent.observations[0]["x"], agent.observations[1]["x"])
    K = task.decision_interval
    assert scheduler.lrs == [env_lrs[i // K] for i in range(task.total_steps)]  # exactly, step by step


def test_exported_schedule_replays_without_the_agent(tmp_path):
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = GNSScheduler(optimizer, ScriptedAgent([1.0, -1.0, 0.5]), model, torch.zeros(2, 4), 10, 3)
    used, _ = plain_loop(model, optimizer, scheduler, steps=10)
    (tmp_path / "schedule.json").write_text(json.dumps(scheduler.export_schedule()))

    for make_replay in (scheduler.as_lambda_lr, lambda o: replay_schedule(o, json.loads((tmp_path / "schedule.json").read_text()))):
        fresh = mlp(seed=1)
        fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.3)  # any starting LR
        replay = make_replay(fresh_optimizer)

        class Stepper:  # the plain loop calls step(loss); LambdaLR.step takes no loss
            def step(self, loss):
                replay.step()

        replayed, _ = plain_loop(fresh, fresh_optimizer, Stepper(), steps=12)
        assert replayed[:10] == pytest.approx(used, rel=1e-12)
        assert replayed[10:] == pytest.approx([used[-1]] * 2, rel=1e-12)  # the last LR is held
    with pytest.raises(ValueError, match="empty"):
        replay_schedule(optimizer, [])


def test_an_agent_trained_with_another_padding_is_refused():
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    agent = ScriptedAgent([], observation_space=graph_observation_space(16, 20))
    with pytest.raises(ValueError, match=r"x: the agent shape \(16, 11\).*max_nodes=16, max_edges=20"):
        GNSScheduler(optimizer, agent, model, torch.zeros(2, 4), 10, 2)
    GNSScheduler(optimizer, agent, model, torch.zeros(2, 4), 10, 2, max_nodes=16, max_edges=20)  # as the hint says
    GNSScheduler(optimizer, agent, model, torch.zeros(2, 4), 10, 2, task=_task_with_padding(16, 20))


def _task_with_padding(nodes, edges):
    from gns_env.tasks import PRESETS

    return PRESETS["GNS/Debug-v0"].with_overrides(max_nodes=nodes, max_edges=edges)


def test_a_saved_agent_schedules_and_picks_the_initial_lr_by_value(debug_env, tmp_path):
    make_gns_ppo(debug_env(), seed=0).save(tmp_path / "agent.zip")
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    from_path = GNSScheduler(optimizer, tmp_path / "agent.zip", model, torch.zeros(2, 4), 20, 2)
    plain_loop(model, optimizer, from_path, steps=4)
    assert len(from_path.decisions) == 2 and from_path.lr != 0.01
    agent = from_path.agent

    def run(lr, steps=4, nan=False):
        model = mlp(seed=3)  # the same init for every candidate
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        scheduler = GNSScheduler(optimizer, agent, model, torch.zeros(2, 4), 20, 2)
        plain_loop(model, optimizer, scheduler, steps, nan_at=1 if nan else None)
        return scheduler

    candidates = [1e-3, 1e-2, 1e-1]
    values = [state_value(agent, run(lr).last_observation) for lr in candidates]
    assert len(set(values)) == 3
    assert initial_lr_scores(run, candidates) == pytest.approx(values)
    assert select_initial_lr(run, candidates) == candidates[int(np.argmax(values))]
    assert initial_lr_scores(lambda lr: run(lr, nan=lr > 0.05), candidates)[2] == -math.inf
    final = initial_lr_scores(lambda lr: (run(lr), 0.5), candidates, criterion="final")
    assert final == pytest.approx([0.5 + v for v in values])
    with pytest.raises(ValueError, match="multiple of decision_interval=2"):
        initial_lr_scores(lambda lr: run(lr, steps=3), candidates)


def test_trainer_callback_sets_the_lr_every_k_steps(tmp_path):
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

    from agents.dropin import GNSTrainerCallback

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16, num_labels=2)  # fmt: skip
    model = BertForSequenceClassification(config)
    ids = torch.randint(0, 30, (32, 6))
    rows = [{"input_ids": ids[i], "attention_mask": torch.ones(6, dtype=torch.long), "labels": int(ids[i, 0] % 2)}
            for i in range(32)]  # fmt: skip
    used = []

    class RecordLR(TrainerCallback):
        def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            used.append(optimizer.param_groups[0]["lr"])

    gns = GNSTrainerCallback(ScriptedAgent([1.0, -1.0, 1.0]), {"input_ids": ids[:2]}, decision_interval=2)
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=7, per_device_train_batch_size=4, learning_rate=1e-3,
        lr_scheduler_type="linear", logging_steps=50, report_to=[], save_strategy="no", use_cpu=True,
        disable_tqdm=True,
    )  # fmt: skip  (a linear decay and logging_steps=50: the callback overrides both)
    trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[gns, RecordLR()])
    trainer.train()
    scheduler = gns.scheduler
    assert used == scheduler.lrs and len(used) == 7
    assert [step for step, _, _ in scheduler.decisions] == [2, 4, 6]
    assert used == pytest.approx([1e-3] * 2 + [1.1e-3] * 2 + [0.99e-3] * 2 + [1.089e-3], rel=1e-12)
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 7  # one log per step
    observation = gns.agent.observations[-1]  # decision at step 6: window = steps 5 and 6
    np.testing.assert_allclose(observation["globals"][1:], [math.log1p(np.mean(logged[4:6])), 6 / 7], rtol=1e-6)
    assert observation["node_mask"].sum() == scheduler.graph.num_nodes > 5
    loss_column = observation["x"][: scheduler.graph.num_nodes, -1]
    assert np.allclose(loss_column, observation["globals"][1]) and loss_column[0] > 0
    with pytest.raises(ValueError, match="decision_interval=0 must be a positive integer"):
        GNSTrainerCallback(ScriptedAgent([]), {"input_ids": ids[:2]}, decision_interval=0)
    with pytest.raises(ValueError, match="total_steps=3 must be at least 2 x decision_interval"):
        GNSTrainerCallback(ScriptedAgent([]), {"input_ids": ids[:2]}, decision_interval=2, total_steps=3)
