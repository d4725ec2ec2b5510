"""Apply a scheduler to a training run: a trained GNS agent or a fixed schedule.

:func:`select_initial_lr` is the paper's application procedure (§4.3): try several initial
LRs, run each for the first K steps (``reset`` does that), and keep the one whose state scores
best under the critic. :func:`run_episode` plays one whole episode and records what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm


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


def state_value(agent: BaseAlgorithm, observation: dict[str, np.ndarray]) -> float:
    """The critic's V(s) for one observation."""
    obs_tensor, _ = agent.policy.obs_to_tensor(observation)
    with torch.no_grad():
        return float(agent.policy.predict_values(obs_tensor).item())


def select_initial_lr(
    agent: BaseAlgorithm, env: gym.Env, seed: int, candidates: Sequence[float], criterion: str = "final"
) -> float:
    """The candidate initial LR whose state after the first K steps scores highest (§4.3).

    Every candidate starts from the same seed (same network init and data split).

    :param criterion: ``"value"`` = the critic's V(s) alone, the paper's literal rule; ``"final"``
        (default) = the validation metric measured at that state plus V(s). Since rewards are
        metric *changes*, V(s) estimates the gain still to come, which is largest where the
        start was worst (a too-high LR); adding the current metric makes the score the
        predicted final metric. A candidate that diverges within the K steps scores -inf.
    """
    if criterion not in ("final", "value"):
        raise ValueError(f"criterion must be 'final' or 'value', got {criterion!r}")
    scores = []
    for lr in candidates:
        observation, info = env.reset(seed=seed, options={"initial_lr": float(lr)})
        if info["diverged"]:
            scores.append(-np.inf)
            continue
        current = info["val_metric"] if criterion == "final" else 0.0
        scores.append(current + state_value(agent, observation))
    return float(candidates[int(np.argmax(scores))])


def run_episode(
    env: gym.Env,
    seed: int,
    initial_lr: float,
    agent: BaseAlgorithm | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    evaluate_test: bool = False,
) -> EpisodeRecord:
    """Play one episode with ``agent`` (deterministic actions) or with ``lr_schedule``.

    :param evaluate_test: measure the test metric at the end (evaluation scripts only).
    :return: the record; a diverged episode has ``final_val_metric = 0`` (so tuning never picks
        it) and the test metric of the network as it ended.
    """
    if (agent is None) == (lr_schedule is None):
        raise ValueError("give exactly one of agent and lr_schedule")
    start = time.perf_counter()
    options = {"initial_lr": initial_lr} if lr_schedule is None else {"lr_schedule": lr_schedule}
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
