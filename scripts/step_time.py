"""Seconds per optimizer step of envs on this machine (the prepared GPU check of the paper-scale envs).

    python scripts/step_time.py --env GNS/FashionMNIST-ResNet18-v0 --env-kwargs device=cuda
    python scripts/step_time.py --env GNS/GLUE-RTE-RoBERTaBase-v0 --env-kwargs device=cuda precision=bf16 pretrained=false

Per env: ``reset`` (the first K steps, untimed: warm-up), then ``--decisions`` env steps with
action 0 and validation off; prints seconds per optimizer step (mean over the timed decisions,
the observation included) and writes them as JSON with ``--out``. ``pretrained=false`` builds
RoBERTa from its configuration, for machines without hub access (same architecture and cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.cli import parse_env_kwargs, user_errors


def seconds_per_step(env: gym.Env, decisions: int) -> float:
    """Mean wall-clock seconds per optimizer step over ``decisions`` env steps after a reset."""
    env.reset(seed=0)
    device = env.unwrapped.device
    start = time.perf_counter()
    steps = 0
    for _ in range(decisions):
        _, _, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        steps = info["step"] - env.unwrapped.task.decision_interval
        if terminated or truncated:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / max(steps, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", nargs="+", required=True, help="registered env IDs")
    parser.add_argument("--decisions", type=int, default=3, help="timed env steps per env (after the reset)")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every env")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.decisions <= 0:
        parser.error("--decisions must be positive")
    results = {}
    with user_errors():
        kwargs = {"val_prob": 0.0, **parse_env_kwargs(args.env_kwargs)}
        for env_id in args.env:
            env = gym.make(env_id, **kwargs)
            results[env_id] = {"seconds_per_step": seconds_per_step(env, args.decisions), "env_kwargs": kwargs,
                               "device": str(env.unwrapped.device)}  # fmt: skip
            env.close()
            print(f"{env_id}: {results[env_id]['seconds_per_step']:.4f} s / optimizer step on {results[env_id]['device']}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
