"""Sanity-check presets: one episode per env at a constant learning rate, with its cost and result.

    python scripts/constant_lr_episode.py --env GNS/GLUE-RTE-Lite-v0 GNS/FashionMNIST-Lite-v0 --lr 5e-5 1e-3

Prints, per env: seconds for the episode (reset to the last step, validations included), the
final validation metric, the test metric (GLUE: dev set) and what always predicting the majority
class of the test split scores (0 for the correlation metrics). ``--out`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym
import torch

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.apply import run_episode
from agents.cli import parse_env_kwargs, user_errors
from gns_env.data.splits import load_task_split
from gns_env.metrics import compute_metrics


def majority_baseline(task: gns_env.TaskSpec) -> float:
    """The task metric of a constant prediction (the most frequent test label) on the test split."""
    targets = load_task_split(task, "test").tensors[-1]
    if task.num_classes == 1:
        return 0.0
    constant = torch.full_like(targets, int(torch.bincount(targets).argmax()))
    return compute_metrics([task.metric], constant, targets)[task.metric]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", nargs="+", required=True, help="registered env IDs")
    parser.add_argument("--lr", type=float, nargs="+", required=True, help="one LR for all envs, or one per env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args(argv)
    if len(args.lr) not in (1, len(args.env)):
        parser.error("give one --lr, or one per --env")
    lrs = args.lr * len(args.env) if len(args.lr) == 1 else args.lr
    results = []
    for env_id, lr in zip(args.env, lrs):
        with user_errors():
            env = gym.make(env_id, **parse_env_kwargs(args.env_kwargs))
        task = env.unwrapped.task
        record = run_episode(env, args.seed, {"initial_lr": lr}, evaluate_test=True)
        env.close()
        result = {
            "env": env_id, "lr": lr, "seed": args.seed, "metric": task.metric, "seconds": round(record.seconds, 1),
            "final_val": round(record.final_val_metric, 4), "test": round(record.test_metric, 4),
            "test_majority": round(majority_baseline(task), 4), "diverged": record.diverged,
        }  # fmt: skip
        results.append(result)
        print(
            f"{env_id}: lr {lr:g}, {result['seconds']} s, final val {task.metric} {result['final_val']:.4f}, "
            f"test {result['test']:.4f} (majority class: {result['test_majority']:.4f})",
            flush=True,
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
