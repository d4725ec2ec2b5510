"""Train a GNS agent (hierarchical GCN + PPO, paper hyperparameters) on a gns-env environment.

    python scripts/train_gns.py --env GNS/FashionMNIST-Lite-v0 --episodes 5 --seed 0 --out runs/demo

Writes ``<out>/agent.zip`` (SB3 PPO), ``<out>/episodes.json`` (one record per episode, rewritten
after each), ``<out>/config.json`` and TensorBoard logs under ``<out>/tb``
(``tensorboard --logdir <out>/tb``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.callbacks import EpisodeResultsCallback
from agents.cli import parse_env_kwargs, user_errors
from agents.ppo import make_gns_ppo
from agents.vec_env import make_training_vec_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="GNS/FashionMNIST-Lite-v0", help="registered env ID")
    parser.add_argument("--episodes", type=int, default=5, help="training episodes (paper: 30); rounded up to whole PPO updates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/gns"), help="output folder")
    parser.add_argument("--n-envs", type=int, default=1, help="parallel envs (SubprocVecEnv when > 1)")
    parser.add_argument("--device", default="auto", help="device of the agent (the env has its own 'device' kwarg)")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="env overrides, e.g. total_steps=200")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.episodes <= 0 or args.n_envs <= 0:
        parser.error("--episodes and --n-envs must be positive")

    with user_errors():
        env_kwargs = parse_env_kwargs(args.env_kwargs)
        probe = gym.make(args.env, **env_kwargs)  # fail fast on a bad ID, kwargs or missing data
        decisions = probe.unwrapped.task.num_decisions
        probe.close()
        env = make_training_vec_env(args.env, env_kwargs, args.n_envs, args.seed)

    args.out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "out": str(args.out), "env_kwargs": env_kwargs, "decisions_per_episode": decisions}
    (args.out / "config.json").write_text(json.dumps(config, indent=2))

    agent = make_gns_ppo(env, seed=args.seed, device=args.device, tensorboard_log=str(args.out / "tb"))
    callback = EpisodeResultsCallback(args.out / "episodes.json", verbose=1)
    start = time.perf_counter()
    agent.learn(total_timesteps=args.episodes * decisions, callback=callback, progress_bar=not args.no_progress)
    agent.save(args.out / "agent.zip")
    env.close()
    print(f"trained {len(callback.results)} episode(s) in {time.perf_counter() - start:.0f} s; agent: {args.out / 'agent.zip'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
