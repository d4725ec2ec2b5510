"""What the env costs on top of training: one run, baselines measured in the same run.

    python scripts/bench_overhead.py --env GNS/FashionMNIST-Lite-v0 --repeats 3 --out results/bench_overhead.json

For each env ID:

- **bare**: a plain PyTorch loop on the same model, training data, optimizer and batch size
  (shuffled in-memory batches), warmed up for K steps, then timed over the steps an episode
  takes between its first and last decision;
- **env**: the same steps driven through ``env.step`` with ``val_prob=0`` (the last decision,
  which always validates, is left out), so observation building is included. Each decision's
  K env steps are paired with K bare steps timed just before them in the same process (the
  speed of this machine drifts by +-15 % between processes and over minutes, which would swamp
  a comparison of separate runs); one ratio per episode, ``--repeats`` episodes;
- **observation**: building one observation (graph features + padding), as a share of the K
  optimizer steps it follows;
- **validation**: one validation pass, and the share of an episode spent validating at p = 0.2
  and p = 1 (reset and the last decision always validate);
- **peak RSS** of a fresh process running only the env against one running only the bare loop;
- ``--episodes-per-hour``: one round of training episodes with ``n_envs = 1`` and ``2``
  (SB3 ``DummyVecEnv`` / ``SubprocVecEnv``, random actions), as episodes per hour.

Prints a table (Markdown) and writes every figure as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.cli import parse_env_kwargs, user_errors
from agents.vec_env import make_training_vec_env
from gns_env.data.splits import load_task_split
from gns_env.models import build_model

TARGETS = {"ratio": 0.97, "observation_share": 0.01, "memory_ratio": 1.2}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class BareLoop:
    """A plain PyTorch loop on the task's model, training data, optimizer and batch size."""

    def __init__(self, env_id: str, env_kwargs: dict, seed: int) -> None:
        task = gns_env.PRESETS[env_id].with_overrides(**env_kwargs)
        self.pool = load_task_split(task, "train")
        torch.manual_seed(seed)
        self.model = build_model(task.model, task.num_classes, task.pretrained, task.model_config).train()
        self.optimizer = task.build_optimizer(self.model.parameters(), lr=1e-3)
        self.rows = torch.randperm(len(self.pool))[task.val_size :]
        self.batch_size = task.batch_size
        self.regression = task.num_classes == 1
        self.train(task.decision_interval)  # warm-up, as reset does for the env

    def train(self, num_steps: int) -> None:
        for _ in range(num_steps):
            *inputs, targets = self.pool[self.rows[torch.randint(len(self.rows), (self.batch_size,))]]
            outputs = self.model(*inputs)
            loss = F.mse_loss(outputs, targets) if self.regression else F.cross_entropy(outputs, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def measure_speed(env_id: str, env_kwargs: dict, repeats: int, seed: int) -> dict:
    """Optimizer steps per second of the bare loop and of ``env.step`` (``val_prob=0``), per
    episode: every decision's K env steps are paired with K bare steps timed right before them,
    in one process, so both see the same machine state. The last decision (always validated)
    is left out."""
    env = gym.make(env_id, **{**env_kwargs, "val_prob": 0.0})
    task = env.unwrapped.task
    bare = BareLoop(env_id, env_kwargs, seed)
    action = np.zeros(1, np.float32)
    bare_rates, env_rates = [], []
    for repeat in range(repeats):
        env.reset(seed=seed + repeat, options={"initial_lr": 1e-3})
        bare_s = env_s = 0.0
        for _ in range(task.num_decisions - 1):
            bare_s += _timed(lambda: bare.train(task.decision_interval))
            env_s += _timed(lambda: env.step(action))
        num_steps = task.decision_interval * (task.num_decisions - 1)
        bare_rates.append(num_steps / bare_s)
        env_rates.append(num_steps / env_s)
    result = {
        "bare_steps_per_s": bare_rates,
        "env_steps_per_s": env_rates,
        "observation_s": statistics.median(_timed(env.unwrapped._observe) for _ in range(20)),
        "validation_s": statistics.median(_timed(lambda: env.unwrapped._validate({})) for _ in range(3)),
    }
    env.close()
    return result


def measure_peak_rss(kind: str, env_id: str, env_kwargs: dict, num_steps: int, seed: int) -> float:
    """Peak RSS (MB) of a fresh process that runs only the bare loop (``num_steps``) or only the env."""
    if kind == "bare":
        BareLoop(env_id, env_kwargs, seed).train(num_steps)
    else:
        env = gym.make(env_id, **{**env_kwargs, "val_prob": 0.0})
        env.reset(seed=seed, options={"initial_lr": 1e-3})
        for _ in range(num_steps // env.unwrapped.task.decision_interval):
            env.step(np.zeros(1, np.float32))
    return _peak_rss_mb()


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def episodes_per_hour(env_id: str, env_kwargs: dict, n_envs: int, seed: int) -> float:
    """One episode per env, random actions, through the vec env that training uses."""
    vec_env = make_training_vec_env(env_id, env_kwargs, n_envs, seed)
    decisions = vec_env.get_attr("task")[0].num_decisions
    start = time.perf_counter()
    vec_env.reset()
    for _ in range(decisions):
        vec_env.step(np.array([vec_env.action_space.sample() for _ in range(n_envs)]))
    seconds = time.perf_counter() - start
    vec_env.close()
    return n_envs * 3600 / seconds


def in_fresh_process(fn, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def summarize(env_id: str, task, speed: dict, rss: dict) -> dict:
    bare, env = speed["bare_steps_per_s"], speed["env_steps_per_s"]
    ratios = [e / b for b, e in zip(bare, env)]
    env_rate = statistics.median(env)
    train_s = task.total_steps / env_rate  # observations included: they are part of env.step

    def validation_share(p: float) -> float:
        validations = 2 + p * (task.num_decisions - 1)  # reset + last decision + the random ones
        return validations * speed["validation_s"] / (train_s + validations * speed["validation_s"])

    return {
        "env": env_id,
        "bare_steps_per_s": [round(b, 3) for b in bare],
        "env_steps_per_s": [round(e, 3) for e in env],
        "ratio": {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)},
        "observation_s": speed["observation_s"],
        "observation_share": speed["observation_s"] / (task.decision_interval / env_rate),
        "validation_s": speed["validation_s"],
        "validation_share": {"p=0.2": validation_share(0.2), "p=1": validation_share(1.0)},
        "peak_rss_mb": rss,
        "memory_ratio": rss["env"] / rss["bare"],
    }


def markdown(result: dict) -> str:
    ratio, share = result["ratio"], result["validation_share"]
    met = {
        "ratio": ratio["min"] >= TARGETS["ratio"],
        "observation_share": result["observation_share"] < TARGETS["observation_share"],
        "memory_ratio": result["memory_ratio"] <= TARGETS["memory_ratio"],
    }
    check = {key: "yes" if ok else "NO" for key, ok in met.items()}
    rows = [
        ("env / bare optimizer steps per s (min / median / max)",
         f"{ratio['min']:.3f} / {ratio['median']:.3f} / {ratio['max']:.3f}", f">= {TARGETS['ratio']}", check["ratio"]),
        ("observation cost per decision, share of its K steps",
         f"{result['observation_share']:.2%} ({result['observation_s'] * 1e3:.1f} ms)",
         f"< {TARGETS['observation_share']:.0%}", check["observation_share"]),
        ("one validation", f"{result['validation_s'] * 1e3:.0f} ms", "", ""),
        ("episode time validating, p = 0.2 / p = 1", f"{share['p=0.2']:.1%} / {share['p=1']:.1%}", "", ""),
        ("peak RSS env / bare",
         f"{result['memory_ratio']:.2f} ({result['peak_rss_mb']['env']:.0f} / {result['peak_rss_mb']['bare']:.0f} MB)",
         f"<= {TARGETS['memory_ratio']}", check["memory_ratio"]),
    ]  # fmt: skip
    if "episodes_per_hour" in result:
        eph = result["episodes_per_hour"]
        rows.append(("episodes per hour, n_envs = 1 / 2", f"{eph['1']:.0f} / {eph['2']:.0f}", "", ""))
    lines = [f"### {result['env']}", "", "| measure | value | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", nargs="+", default=["GNS/FashionMNIST-Lite-v0"], help="registered env IDs")
    parser.add_argument("--repeats", type=int, default=3, help="bare/env measurement pairs per env")
    parser.add_argument("--episodes-per-hour", action="store_true", help="also time n_envs = 1 and 2")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON file for every figure")
    args = parser.parse_args(argv)
    if args.repeats <= 0:
        parser.error("--repeats must be positive")

    results = []
    for env_id in args.env:
        with user_errors():
            env_kwargs = parse_env_kwargs(args.env_kwargs)
            probe = gym.make(env_id, **env_kwargs)  # fail fast on a bad ID, kwargs or missing data
        task = probe.unwrapped.task
        probe.close()
        print(f"{env_id}: {args.repeats} bare/env pairs, then peak memory", flush=True)
        speed = in_fresh_process(measure_speed, env_id, env_kwargs, args.repeats, args.seed)
        num_steps = task.decision_interval * (task.num_decisions - 1)
        rss = {kind: in_fresh_process(measure_peak_rss, kind, env_id, env_kwargs, num_steps, args.seed)
               for kind in ("bare", "env")}  # fmt: skip
        result = summarize(env_id, task, speed, rss)
        if args.episodes_per_hour:
            result["episodes_per_hour"] = {
                str(n): in_fresh_process(episodes_per_hour, env_id, env_kwargs, n, args.seed) for n in (1, 2)
            }
        result["machine"] = {"cpus": os.cpu_count(), "torch": torch.__version__}
        results.append(result)
        print("\n" + markdown(result) + "\n", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
