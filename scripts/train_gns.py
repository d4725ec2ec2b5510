"""Train a GNS agent (hierarchical GCN + PPO, paper hyperparameters) on a gns-env environment.

    python scripts/train_gns.py --env GNS/FashionMNIST-Lite-v0 --episodes 5 --seed 0 --out runs/demo

Writes ``<out>/agent.zip`` (SB3 PPO), ``<out>/episodes.json`` (one record per episode, rewritten
after each), ``<out>/config.json``, TensorBoard logs under ``<out>/tb``
(``tensorboard --logdir <out>/tb``) and ``<out>/checkpoint.zip`` / ``.json`` every
``--checkpoint-every`` episodes. ``--resume`` continues a killed run from its checkpoint up to
``--episodes`` in all: episodes after the checkpoint (not yet learned from) run again and their
records are replaced; the resumed envs are seeded afresh (``seed + 1000 x episodes done``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.callbacks import EpisodeCheckpoint, EpisodeResultsCallback
from agents.cli import parse_env_kwargs, user_errors
from agents.ppo import GNSPPO, make_gns_ppo
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
    parser.add_argument("--checkpoint-every", type=int, default=1, help="episodes between checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.zip")
    args = parser.parse_args(argv)
    if args.episodes <= 0 or args.n_envs <= 0 or args.checkpoint_every <= 0:
        parser.error("--episodes, --n-envs and --checkpoint-every must be positive")
    checkpoint = args.out / "checkpoint"
    if args.resume and not (checkpoint.with_suffix(".zip").is_file() and checkpoint.with_suffix(".json").is_file()):
        parser.error(f"--resume: no checkpoint in {args.out}")
    done = json.loads(checkpoint.with_suffix(".json").read_text())["episodes"] if args.resume else 0
    if args.resume and args.episodes <= done:
        parser.error(f"--resume: the checkpoint in {args.out} has {done} episodes already; ask for more with --episodes")

    with user_errors():
        env_kwargs = parse_env_kwargs(args.env_kwargs)
        probe = gym.make(args.env, **env_kwargs)  # fail fast on a bad ID, kwargs or missing data
        decisions = probe.unwrapped.task.num_decisions
        probe.close()
        env = make_training_vec_env(args.env, env_kwargs, args.n_envs, args.seed)

    args.out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "out": str(args.out), "env_kwargs": env_kwargs, "decisions_per_episode": decisions}
    (args.out / "config.json").write_text(json.dumps(config, indent=2))

    results = []
    if args.resume:
        agent = GNSPPO.load(checkpoint.with_suffix(".zip"), env=env, device=args.device)
        agent.set_random_seed(args.seed + 1000 * done)  # load re-applies the run's first seed to the envs
        results = json.loads((args.out / "episodes.json").read_text())[:done]
        print(f"resuming after {done} episode(s) ({agent.num_timesteps} decisions)")
    else:
        agent = make_gns_ppo(env, seed=args.seed, device=args.device, tensorboard_log=str(args.out / "tb"))
    results_callback = EpisodeResultsCallback(args.out / "episodes.json", verbose=1, results=results)
    checkpoints = EpisodeCheckpoint(checkpoint, args.checkpoint_every, episodes_done=done)
    start = time.perf_counter()
    agent.learn(
        total_timesteps=max(args.episodes * decisions - agent.num_timesteps, 0),
        callback=[results_callback, checkpoints],
        progress_bar=not args.no_progress,
        reset_num_timesteps=not args.resume,
    )
    agent.save(args.out / "agent.zip")
    env.close()
    trained = len(results_callback.results) - done
    print(f"trained {trained} episode(s) in {time.perf_counter() - start:.0f} s; agent: {args.out / 'agent.zip'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
