"""Compare learning-rate schedulers on any env the paper's way (§5.1): tables, plots, costs.

    python scripts/compare.py --env GNS/FashionMNIST-Lite-v0 --seeds 5 --out results/fmnist-lite
    python scripts/compare.py --env GNS/Debug-v0 --methods constant cosine gns --agent runs/gns/agent.zip
    python scripts/compare.py --env GNS/CIFAR10-Lite-v0 --transfer-to GNS/CIFAR10-VGGLite-v0 --out runs/cifar

1. Search (on a tuning seed): each hand-designed baseline (constant, polynomial, cosine decay,
   Adam-HD) runs every configuration of its grid (``--grid paper``: Tables 5/6 and App. B.4;
   ``small``: 3 peak LRs, the other parameters fixed); CMA-ES searches the cosine schedule
   (``--cma-evaluations``, App. E.7); each learned scheduler (GNS, GNS-GAT, FRS, SRLS, CSS)
   trains for ``--episodes`` episodes (``--agent`` gives a trained GNS agent instead).
2. Test: the best configurations and the agents on ``--seeds`` held-out seeds; agents start from
   the candidate initial LR (``--initial-lrs``) their critic values highest after
   ``--pre-decisions`` decisions (``--lr-criterion value``, the paper's rule).
3. Report in ``--out``: ``table.md`` (printed too), ``table.csv``, ``report.json`` (every run),
   ``trajectories.png`` (LR and validation curves), ``search.png`` (best validation metric vs.
   evaluations / training episodes) and every run's result under ``store/``.

Resumable: run the same command again after an interruption and only the missing runs execute.
Runs execute in this process (``--workers 1``), in local processes (``--workers N``) or as Ray
tasks (``--backend ray``, a local Ray unless ``--ray-address``). With several ``--env`` IDs,
each gets its own folder ``<out>/<ID>``.

Transfer (paper §5.4, Table 3): with ``--transfer-to B``, the search runs on ``--env`` A as above
(in ``--out``, shared with a plain comparison of A with the same settings), and the test runs on
B's held-out seeds: the baselines with the configurations tuned on A, the agents trained on A.
B's table, plots and runs go to ``<out>/transfer/<B>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.apply import check_observation_space
from agents.cli import interruptible, parse_env_kwargs, user_errors
from agents.comparison import (
    GRIDS,
    METHODS,
    ComparisonSettings,
    check_transfer,
    run_comparison,
    run_transfer,
    transfer_folder,
)
from agents.jobs import BACKENDS, JobsFailed
from agents.ppo import load_agent_file
from agents.schedulers import LEARNED_SCHEDULERS
from agents.training import state_representation
from agents.report import markdown_table, write_report


def _check_agent(path: Path, env_id: str, env_kwargs: dict) -> None:
    """Fail early, in one line, on a missing or foreign agent file, one of another learned
    scheduler (it would be labelled GNS) or one that cannot act on the env."""
    agent = load_agent_file(path)
    extractor, extractor_kwargs = state_representation(agent.policy_kwargs)
    if (extractor, extractor_kwargs) != state_representation(LEARNED_SCHEDULERS["gns"].policy_kwargs):
        raise ValueError(
            f"--agent {path} has a {extractor.__name__}{extractor_kwargs or ''} state, not GNS's: "
            "--agent tests a GNS agent (compare.py trains the other learned schedulers itself)"
        )
    env = gym.make(env_id, **env_kwargs)
    check_observation_space(agent.observation_space, env.observation_space, env_id)
    env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", nargs="+", default=["GNS/FashionMNIST-Lite-v0"], help="registered env ID(s)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), metavar="METHOD",
                        help=f"schedulers to compare (default: all of {', '.join(METHODS)})")  # fmt: skip
    parser.add_argument("--agent", type=Path, help="a GNS agent.zip from train_gns.py to test instead of training 'gns'")
    parser.add_argument("--seeds", type=int, default=5, help="held-out seeds (paper: 5)")
    parser.add_argument("--grid", choices=GRIDS, default="small", help="baseline search space")
    parser.add_argument("--episodes", type=int, default=5, help="training episodes per learned scheduler (paper: 30)")
    parser.add_argument("--cma-evaluations", type=int, default=50, help="CMA-ES budget (paper: 50)")
    parser.add_argument("--initial-lrs", type=float, nargs="+", default=[], help="candidate initial LRs of the agents "
                        "(default: 3 log-spaced over the task's initial-LR range)")  # fmt: skip
    parser.add_argument("--lr-criterion", choices=("value", "final"), default="value",
                        help="initial-LR selection: 'value' = V(s) (paper), 'final' = val metric + V(s)")  # fmt: skip
    parser.add_argument("--pre-decisions", type=int, default=1, help="T_pre in decisions (T_pre = this x K)")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--transfer-to", nargs="+", default=[], metavar="ENV",
                        help="test on these env ID(s) what was tuned and trained on --env (paper Table 3)")  # fmt: skip
    parser.add_argument("--transfer-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="env kwargs of --transfer-to")
    parser.add_argument("--backend", choices=BACKENDS, default="local")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (1: run in this process)")
    parser.add_argument("--ray-address", help="Ray cluster address (default: start a local Ray)")
    parser.add_argument("--cpus-per-job", type=int, default=1, help="CPUs (and torch threads) each Ray task asks for")
    args = parser.parse_args(argv)
    for name in ("seeds", "episodes", "cma_evaluations", "pre_decisions", "workers", "cpus_per_job"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.agent is not None and len(args.env) > 1:
        parser.error("--agent tests one agent: give one --env (or let compare.py train one agent per env)")
    if args.transfer_to and len(args.env) > 1:
        parser.error("--transfer-to transfers from one --env")
    if args.transfer_kwargs and not args.transfer_to:
        parser.error("--transfer-kwargs configures --transfer-to envs: give --transfer-to")

    with user_errors(), interruptible("every finished run is stored: the same command continues from there"):
        env_kwargs = parse_env_kwargs(args.env_kwargs)
        transfer_kwargs = parse_env_kwargs(args.transfer_kwargs)
        if args.agent is not None:
            _check_agent(args.agent, args.env[0], env_kwargs)
        for env_id in args.env:
            out = args.out if len(args.env) == 1 else args.out / env_id.replace("/", "_")
            settings = ComparisonSettings(
                env_id=env_id, env_kwargs=env_kwargs, seeds=args.seeds, grid=args.grid, episodes=args.episodes,
                cma_evaluations=args.cma_evaluations, initial_lrs=tuple(args.initial_lrs), criterion=args.lr_criterion,
                pre_decisions=args.pre_decisions, agent=None if args.agent is None else str(args.agent),
            )  # fmt: skip
            for target in args.transfer_to:  # every target checked before anything runs
                check_transfer(settings, args.methods, target, transfer_kwargs)
            execution = dict(backend=args.backend, workers=args.workers, ray_address=args.ray_address,
                             cpus_per_job=args.cpus_per_job, log=lambda line: print(line, flush=True))  # fmt: skip
            try:
                if not args.transfer_to:
                    print(f"== {env_id}: {', '.join(args.methods)} -> {out}", flush=True)
                    _write(run_comparison(settings, args.methods, out, **execution), out)
                for target in args.transfer_to:
                    folder = transfer_folder(out, target)
                    print(f"== {env_id} -> {target}: {', '.join(args.methods)} -> {folder}", flush=True)
                    _write(run_transfer(settings, args.methods, out, target, transfer_kwargs, **execution), folder)
            except JobsFailed as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
    return 0


def _write(report: dict, out: Path) -> None:
    paths = write_report(report, out)
    print(f"\n{paths[0].read_text().splitlines()[0]}\n\n{markdown_table(report['rows'], report['task']['metric'])}\n")
    print(f"written: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    sys.exit(main())
