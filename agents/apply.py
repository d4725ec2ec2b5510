"""Apply a scheduler to a training run: a trained GNS agent or a fixed schedule.

:func:`select_initial_lr` is the paper's application procedure (§4.3): try several initial
LRs, run each for ``T_pre`` steps, and keep the one whose state the critic values highest. :func:`run_episode` plays one whole episode and records what happened.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

#: How :func:`initial_lr_scores` ranks candidate initial LRs.
CRITERIA = ("value", "final")


@dataclass
class EpisodeRecord:
    """What one episode did. ``steps``/``lrs``/``val_steps``/``val_metrics`` are per decision."""

    seed: int
    initial_lr: float
    final_val_metric: float = float("nan")
    test_metric: float | None = None
    diverged: bool = False
    seconds: float = 0.0
    steps: list[int] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_metrics: list[float] = field(default_factory=list)


def check_observation_space(
    agent_space: gym.spaces.Space, env_space: gym.spaces.Dict, env_id: str, observer: str = "the agent"
) -> None:
    """Raise one ``ValueError`` naming every key whose space differs between what ``observer``
    (a saved agent, or the agents of an env) observes and an env (the shared padded Dict of
    :mod:`gns_env.spaces` makes them equal across envs)."""
    if agent_space == env_space:
        return
    if not isinstance(agent_space, gym.spaces.Dict):
        raise ValueError(f"{observer} observes {agent_space}, not the graph Dict of {env_id}: it is not a GNS-env agent")

    def describe(space: gym.spaces.Dict, key: str, other: gym.spaces.Dict) -> str:
        if key not in space.spaces:
            return "missing"
        box = space[key]
        if key in other.spaces and box.shape == other[key].shape and hasattr(box, "high"):
            return f"shape {box.shape} up to {np.max(box.high):g}"  # same shape: the bounds differ
        return f"shape {box.shape}"

    keys = sorted(set(agent_space.spaces) | set(env_space.spaces))
    differing = [
        f"{key}: {observer} {describe(agent_space, key, env_space)}, env {describe(env_space, key, agent_space)}"
        for key in keys
        if key not in agent_space.spaces or key not in env_space.spaces or agent_space[key] != env_space[key]
    ]
    raise ValueError(
        f"the observation space of {observer} does not match {env_id}'s ({'; '.join(differing)}); "
        "make the env with the same max_nodes/max_edges"
    )


def state_value(agent: BaseAlgorithm, observation: dict[str, np.ndarray]) -> float:
    """The critic's V(s) for one observation, in eval mode like SB3's ``predict`` (batch norm
    uses, and never updates, its running statistics)."""
    agent.policy.set_training_mode(False)
    obs_tensor, _ = agent.policy.obs_to_tensor(observation)
    with torch.no_grad():
        return float(agent.policy.predict_values(obs_tensor).item())


def initial_lr_scores(
    agent: BaseAlgorithm,
    env: gym.Env,
    seed: int,
    candidates: Sequence[float],
    criterion: str = "value",
    pre_decisions: int = 1,
) -> list[float]:
    """The score of each candidate initial LR after its first ``pre_decisions`` decisions (§4.3).

    Every candidate starts from the same seed (same network init and data split), runs the
    first K steps (``reset``) and then ``pre_decisions - 1`` decisions of the agent, so
    ``T_pre = pre_decisions * K`` optimizer steps.

    :param criterion: ``"value"`` (default) = the critic's V(s), the paper's rule; ``"final"`` =
        the validation metric measured at that state plus V(s). Since rewards are metric
        *changes*, V(s) estimates the gain still to come, which can be largest where the start
        was worst; adding the current metric makes the score the predicted final metric.
    :return: one score per candidate; one that diverges within ``T_pre`` scores -inf.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if pre_decisions < 1:
        raise ValueError(f"pre_decisions must be >= 1, got {pre_decisions}")
    scores = []
    for lr in candidates:
        observation, info = env.reset(seed=seed, options={"initial_lr": float(lr)})
        metric, done = info.get("val_metric", 0.0), info["diverged"]
        for _ in range(pre_decisions - 1):
            if done:
                break
            observation, _, terminated, truncated, info = env.step(agent.predict(observation, deterministic=True)[0])
            metric = info.get("val_metric", metric)
            done = terminated or truncated
        if info["diverged"]:
            scores.append(-math.inf)
            continue
        scores.append((metric if criterion == "final" else 0.0) + state_value(agent, observation))
    return scores


def select_initial_lr(
    agent: BaseAlgorithm,
    env: gym.Env,
    seed: int,
    candidates: Sequence[float],
    criterion: str = "value",
    pre_decisions: int = 1,
) -> float:
    """The candidate initial LR with the highest :func:`initial_lr_scores` (paper §4.3)."""
    return best_candidate(candidates, initial_lr_scores(agent, env, seed, candidates, criterion, pre_decisions))


def best_candidate(candidates: Sequence[float], scores: Sequence[float]) -> float:
    """The candidate with the highest score (the first one on ties)."""
    if len(candidates) == 0:
        raise ValueError("no candidate initial LRs to choose from")
    return float(candidates[int(np.argmax(scores))])


def run_episode(
    env: gym.Env,
    seed: int,
    options: dict | None = None,
    agent: BaseAlgorithm | None = None,
    evaluate_test: bool = False,
) -> EpisodeRecord:
    """Play one episode from ``env.reset(seed=seed, options=options)``.

    :param options: reset options: ``{"initial_lr": x}`` for an agent or a constant LR, a
        baseline's ``config.reset_options()`` (an ``lr_schedule`` or Adam-HD).
    :param agent: acts (deterministically) at every decision; without one, every action is 0.
    :param evaluate_test: measure the test metric at the end (evaluation scripts only).
    :return: the record; a diverged episode has ``final_val_metric = 0`` (so tuning never picks
        it) and the test metric of the network as it ended.
    """
    start = time.perf_counter()
    observation, info = env.reset(seed=seed, options=options)
    record = EpisodeRecord(seed=seed, initial_lr=info["lr"])

    def log(info: dict) -> None:
        record.steps.append(info["step"])
        record.lrs.append(info["lr"])
        if info.get("validated"):
            record.val_steps.append(info["step"])
            record.val_metrics.append(info["val_metric"])
        record.diverged = record.diverged or info["diverged"]

    log(info)
    done = False
    while not done:
        action = agent.predict(observation, deterministic=True)[0] if agent is not None else np.zeros(1, np.float32)
        observation, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        log(info)
    record.final_val_metric = record.val_metrics[-1] if not record.diverged and record.val_metrics else 0.0
    if evaluate_test:
        record.test_metric = env.unwrapped.evaluate_test()
    record.seconds = time.perf_counter() - start
    return record
