"""Compare schedulers the paper's way (§5.1): tune baselines on validation, test on held-out seeds."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.apply import EpisodeRecord, run_episode, select_initial_lr
from agents.baselines import Schedule


def tune_schedule(env: gym.Env, candidates: Sequence[Schedule], seed: int) -> tuple[Schedule, list[EpisodeRecord]]:
    """Run every candidate on ``seed`` and return the one with the best final validation metric."""
    records = [run_episode(env, seed, schedule.alpha_max, lr_schedule=schedule) for schedule in candidates]
    best = int(np.argmax([record.final_val_metric for record in records]))
    return candidates[best], records


def evaluate_schedule(env: gym.Env, schedule: Schedule, seeds: Sequence[int]) -> list[EpisodeRecord]:
    """``schedule`` on each held-out seed, with the test metric."""
    return [run_episode(env, s, schedule.alpha_max, lr_schedule=schedule, evaluate_test=True) for s in seeds]


def evaluate_agent(
    env: gym.Env, agent: BaseAlgorithm, seeds: Sequence[int], initial_lrs: Sequence[float], criterion: str = "final"
) -> list[EpisodeRecord]:
    """The agent on each held-out seed, from the initial LR chosen by ``criterion`` (§4.3,
    :func:`agents.apply.select_initial_lr`)."""
    return [
        run_episode(env, s, select_initial_lr(agent, env, s, initial_lrs, criterion), agent=agent, evaluate_test=True)
        for s in seeds
    ]


def summarize(method: str, config: str, records: Sequence[EpisodeRecord]) -> dict:
    """One table row: test and validation metric mean and std (in %) over the seeds."""
    test = np.array([r.test_metric for r in records], dtype=float) * 100
    val = np.array([r.final_val_metric for r in records], dtype=float) * 100
    ddof = 1 if len(records) > 1 else 0
    return {
        "method": method,
        "config": config,
        "test_mean": round(float(test.mean()), 2),
        "test_std": round(float(test.std(ddof=ddof)), 2),
        "val_mean": round(float(val.mean()), 2),
        "seeds": len(records),
        "diverged": sum(r.diverged for r in records),
        "minutes": round(sum(r.seconds for r in records) / 60, 1),
    }


def markdown_table(rows: Sequence[dict], metric: str = "accuracy") -> str:
    """The rows as a Markdown table (test metric as mean ± std, like the paper's tables)."""
    lines = [
        f"| Scheduler | Test {metric} (%) | Val {metric} (%) | Seeds | Diverged | Configuration |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['test_mean']:.2f} ± {row['test_std']:.2f} | {row['val_mean']:.2f} "
            f"| {row['seeds']} | {row['diverged']} | {row['config']} |"
        )
    return "\n".join(lines)


def write_csv(rows: Sequence[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_trajectories(
    results: dict[str, Sequence[EpisodeRecord]], path: Path, title: str, metric: str = "accuracy"
) -> None:
    """LR (log scale) and validation metric against optimizer steps, first seed of each method
    (like paper Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lr, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for method, records in results.items():
        record = records[0]
        ax_lr.plot(record.steps, record.lrs, label=method, drawstyle="steps-post")
        ax_val.plot(record.val_steps, np.array(record.val_metrics) * 100, marker="o", ms=3, label=method)
    ax_lr.set(xlabel="optimizer step", ylabel="learning rate", yscale="log", title=f"{title}: LR (seed {record.seed})")
    ax_val.set(xlabel="optimizer step", ylabel=f"validation {metric} (%)", title="validation at validated decisions")
    for ax in (ax_lr, ax_val):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
