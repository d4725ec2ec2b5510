"""Train a learned LR scheduler (GNS by default; paper hyperparameters, PPO) on a gns-env environment.

    python scripts/train_gns.py --env GNS/FashionMNIST-Lite-v0 --episodes 5 --seed 0 --out runs/demo
    python scripts/train_gns.py --env GNS/Debug-v0 --scheduler srls --out runs/srls

``--scheduler`` picks the state representation (and reward density); every scheduler uses the
same policy heads and PPO (:mod:`agents.schedulers`). Writes ``<out>/agent.zip`` (SB3 PPO),
``<out>/episodes.json`` (one record per episode, rewritten after each), ``<out>/config.json``,
TensorBoard logs under ``<out>/tb`` (``tensorboard --logdir <out>/tb``) and
``<out>/checkpoint.zip`` / ``.json`` every ``--checkpoint-every`` episodes. ``--resume``
continues a killed run from its checkpoint up to ``--episodes`` in all: episodes after the
checkpoint (not yet learned from) run again and their records are replaced; the resumed envs
are seeded afresh (``seed + 1000 x episodes done``). An ``--out`` that holds another run (env,
scheduler, env kwargs or seed) is refused, never overwritten; the same command after the run
has finished reports it and trains nothing. The logic is :func:`agents.training.train_agent`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.cli import interruptible, parse_env_kwargs, user_errors
from agents.schedulers import LEARNED_SCHEDULERS
from agents.training import prepare_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="GNS/FashionMNIST-Lite-v0", help="registered env ID")
    schedulers = "; ".join(f"{key} = {spec.name}: {spec.description}" for key, spec in LEARNED_SCHEDULERS.items())
    parser.add_argument("--scheduler", choices=list(LEARNED_SCHEDULERS), default="gns",
                        help=f"learned scheduler to train (default gns). {schedulers}")  # fmt: skip
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

    with user_errors():  # bad numbers, env ID/kwargs/data or checkpoint: one line, exit 2
        run = prepare_training(
            args.env, parse_env_kwargs(args.env_kwargs), scheduler=args.scheduler, episodes=args.episodes,
            seed=args.seed, out=args.out, n_envs=args.n_envs, checkpoint_every=args.checkpoint_every,
            resume=args.resume, device=args.device,
        )  # fmt: skip
    with interruptible(f"the checkpoints in {args.out} are kept: the same command with --resume continues from the last"):
        run.train(progress_bar=not args.no_progress, verbose=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
