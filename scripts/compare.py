"""Compare a trained GNS agent with tuned constant and cosine schedules (paper §5.1 protocol).

    python scripts/compare.py --agent runs/demo/agent.zip --env GNS/FashionMNIST-Lite-v0 --seeds 3 --out runs/demo/compare

1. Tune: every baseline configuration of the grid runs once on the tuning seed; the best final
   validation metric wins (``--grid paper`` = the task's Table 5 or Table 6 space; ``small`` = a
   CPU-sized subset: three constant LRs spanning the task's initial-LR range, cosine decay to
   1 % from the lowest two).
2. Test: the winners and the agent run on ``--seeds`` held-out seeds (distinct from training and
   tuning seeds); the agent starts from the candidate initial LR its critic scores highest
   (``--lr-criterion``: validation metric + V(s) by default, V(s) alone as in the paper).
3. Report: the test metric (GLUE: the dev set) mean ± std as a printed Markdown table, ``table.md``, ``table.csv``,
   every run in ``runs.json``, and the LR / validation trajectories in ``trajectories.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.baselines import SEARCH_SPACES, schedule_grid
from agents.cli import parse_env_kwargs, user_errors
from agents.comparison import (
    evaluate_agent,
    evaluate_schedule,
    markdown_table,
    plot_trajectories,
    summarize,
    tune_schedule,
    write_csv,
)
from agents.ppo import GNSPPO

TUNE_SEED = 10_000
HELD_OUT_SEED = 20_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", type=Path, required=True, help="agent.zip written by train_gns.py")
    parser.add_argument("--env", default="GNS/FashionMNIST-Lite-v0")
    parser.add_argument("--seeds", type=int, default=3, help="held-out seeds (paper: 5)")
    parser.add_argument("--grid", choices=("small", "paper"), default="small", help="baseline search space")
    parser.add_argument("--initial-lrs", type=float, nargs="+", help="candidate initial LRs of the agent "
                        "(default: 3 log-spaced over the task's initial-LR range)")  # fmt: skip
    parser.add_argument("--lr-criterion", choices=("final", "value"), default="final",
                        help="initial-LR selection: 'value' = V(s) (paper), 'final' = val metric + V(s)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.seeds <= 0:
        parser.error("--seeds must be positive")
    if not args.agent.is_file():
        parser.error(f"--agent {args.agent} does not exist; train one with scripts/train_gns.py")

    with user_errors():
        env = gym.make(args.env, **parse_env_kwargs(args.env_kwargs))
    task = env.unwrapped.task
    try:
        agent = GNSPPO.load(args.agent, device="cpu")
    except (ValueError, KeyError, OSError) as err:  # SB3: "the file ... wasn't a zip-file", missing entries
        parser.error(f"--agent {args.agent} is not an agent saved by scripts/train_gns.py ({err})")
    if agent.observation_space != env.observation_space:
        sys.exit(f"error: the agent's observation space does not match {args.env}'s (max_nodes/max_edges differ)")
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [HELD_OUT_SEED + i for i in range(args.seeds)]
    initial_lrs = args.initial_lrs or list(np.geomspace(*task.initial_lr_range, num=3))
    spaces = {kind: SEARCH_SPACES[task.search_space] for kind in ("constant", "cosine")}
    if args.grid == "small":
        peaks = tuple(float(f"{lr:.2g}") for lr in np.geomspace(*task.initial_lr_range, num=3))
        spaces = {"constant": {"alpha_max": peaks}, "cosine": {"alpha_max": peaks[:2], "mu": (1e-2,)}}

    results, rows, tuning = {}, [], {}
    for kind in ("constant", "cosine"):
        grid = schedule_grid(kind, task.total_steps, spaces[kind])
        print(f"tuning {kind}: {len(grid)} configurations on seed {TUNE_SEED}", flush=True)
        best, records = tune_schedule(env, grid, TUNE_SEED)
        tuning[kind] = [{"config": s.label(), "val_metric": r.final_val_metric} for s, r in zip(grid, records)]
        print(f"  best {best.label()}; testing on seeds {seeds}", flush=True)
        results[kind.capitalize()] = evaluate_schedule(env, best, seeds)
        rows.append(summarize(kind.capitalize(), best.label(), results[kind.capitalize()]))
    print(f"GNS agent {args.agent}: initial LR chosen by {args.lr_criterion!r} among "
          f"{[f'{lr:.0e}' for lr in initial_lrs]}", flush=True)  # fmt: skip
    results["GNS"] = evaluate_agent(env, agent, seeds, initial_lrs, args.lr_criterion)
    chosen = ", ".join(f"{r.initial_lr:.0e}" for r in results["GNS"])
    rows.append(summarize("GNS", f"{args.agent} (initial LRs {chosen})", results["GNS"]))
    env.close()

    table = markdown_table(rows, task.metric)
    title = f"Test {task.metric}{' (GLUE dev set)' if task.is_text else ''} on {args.env}, {args.seeds} held-out seeds"
    (args.out / "table.md").write_text(f"{title}\n\n{table}\n")
    write_csv(rows, args.out / "table.csv")
    runs = {"env": args.env, "tuning": tuning, "rows": rows, "runs": {k: [asdict(r) for r in v] for k, v in results.items()}}
    (args.out / "runs.json").write_text(json.dumps(runs, indent=2))
    plot_trajectories(results, args.out / "trajectories.png", args.env, task.metric)
    print(f"\n{title}\n\n{table}\n")
    print(f"written: {args.out}/table.md, table.csv, runs.json, trajectories.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
