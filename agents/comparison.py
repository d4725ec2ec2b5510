"""Compare schedulers the paper's way (§5.1, §4.3, App. E.7) on any env, resumably.

1. **Search**: every hand-designed baseline runs each configuration of its grid once on the
   tuning seed; CMA-ES searches the cosine schedule's parameters on the same seed; every
   learned scheduler trains for ``episodes`` episodes.
2. **Test**: each baseline's best configuration (final validation metric) and each trained agent
   run on the held-out seeds; an agent starts from the candidate initial LR its critic values
   highest after ``T_pre`` steps.
3. **Report**: per method, the test metric mean ± std, the search cost in wall-clock minutes
   (grid or CMA-ES evaluations vs. agent training, §5.5) and the chosen configuration.

Every run is a job of :mod:`agents.jobs` stored under ``<out>/store``; running the same
comparison again reuses what is stored and runs only what is missing.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from agents.baselines import (
    HYPERGRADIENT_SEARCH_SPACES,
    SEARCH_SPACES,
    HypergradientConfig,
    Schedule,
    hypergradient_grid,
    schedule_grid,
)
from agents.cma_search import CMA_SEARCH_SPACES, CosineCMASearch
from agents.jobs import EpisodeJob, ResultStore, TrainJob, run_jobs
from agents.schedulers import LEARNED_SCHEDULERS
from gns_env.tasks import TaskSpec

TUNE_SEED = 10_000
HELD_OUT_SEED = 20_000
#: Method key -> table name. Hand-designed ones are tuned over a grid.
HAND_DESIGNED = {"constant": "Constant", "polynomial": "Polynomial", "cosine": "Cosine", "adam-hd": "Adam-HD"}
SEARCHED = {"cma-es": "CMA-ES"}
LEARNED = {key: scheduler.name for key, scheduler in LEARNED_SCHEDULERS.items()}
METHODS = {**HAND_DESIGNED, **SEARCHED, **LEARNED}
GRIDS = ("small", "paper")
#: The CPU-sized grid: 3 peak LRs log-spaced over the task's initial-LR range, every other
#: parameter fixed at one value of the paper's range (Hypergradient: its largest beta).
SMALL_GRID_FIXED = {
    "image": {"mu": (1e-2,), "eta2": (1.0,), "power": (1,), "beta": (1e-7,)},
    "language": {"eta1": (0.05,), "power": (1,), "beta": (1e-7,)},
}


@dataclass(frozen=True)
class ComparisonSettings:
    """What makes two comparisons the same (a resumed run must match the stored settings).

    :param seeds: number of held-out seeds (paper: 5).
    :param grid: ``"paper"`` (Tables 5/6, App. B.4) or ``"small"`` (:data:`SMALL_GRID_FIXED`).
    :param episodes: training episodes of each learned scheduler (paper: 30).
    :param cma_evaluations: CMA-ES budget (paper: 50).
    :param initial_lrs: candidate initial LRs of the agents (empty: 3 log-spaced over the
        task's initial-LR range).
    :param criterion: ``"value"`` (paper) or ``"final"``, see :func:`agents.apply.initial_lr_scores`.
    :param pre_decisions: T_pre in decisions (T_pre = pre_decisions x K).
    :param agent: a pre-trained GNS agent to test instead of training one.
    """

    env_id: str
    env_kwargs: dict = field(default_factory=dict)
    seeds: int = 5
    grid: str = "small"
    episodes: int = 5
    train_seed: int = 0
    cma_evaluations: int = 50
    initial_lrs: tuple[float, ...] = ()
    criterion: str = "value"
    pre_decisions: int = 1
    agent: str | None = None

    def validate(self) -> None:
        if self.grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {self.grid!r}")
        for name in ("seeds", "episodes", "cma_evaluations", "pre_decisions"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def baseline_grid(method: str, task: TaskSpec, grid: str = "small") -> list[Schedule | HypergradientConfig]:
    """The configurations hand-designed ``method`` is tuned over on ``task``."""
    if grid == "paper":
        if method == "adam-hd":
            return hypergradient_grid(HYPERGRADIENT_SEARCH_SPACES[task.search_space])
        return schedule_grid(method, task.total_steps, SEARCH_SPACES[task.search_space])
    peaks = tuple(float(f"{lr:.2g}") for lr in np.geomspace(*task.initial_lr_range, num=3))
    fixed = SMALL_GRID_FIXED[task.search_space]
    if method == "adam-hd":
        return hypergradient_grid({"alpha0": peaks, "beta": fixed["beta"]})
    return schedule_grid(method, task.total_steps, {"alpha_max": peaks, **fixed})


def _check_settings(path: Path, settings: ComparisonSettings) -> None:
    """Store ``settings`` in a new output folder; in an existing one they must be the same."""
    current = json.loads(json.dumps(asdict(settings)))  # tuples -> lists, as stored
    if path.is_file():
        stored = json.loads(path.read_text())
        differing = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        if differing:
            raise ValueError(
                f"{path.parent} holds a comparison with other settings ({', '.join(differing)} differ: "
                f"{ {k: stored.get(k) for k in differing} }); use another --out or the same settings"
            )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, indent=2))


def _tune_key(method: str, config: Schedule | HypergradientConfig) -> str:
    return f"tune/{method}/{config.label().replace(' ', '')}"


def _test_prefix(method: str, agent: str | None) -> str:
    """Agents' runs are keyed by the agent file's hash: a retrained agent is tested afresh."""
    if agent is None:
        return f"test/{method}"
    return f"test/{method}/{hashlib.sha256(Path(agent).read_bytes()).hexdigest()[:12]}"


def run_comparison(
    settings: ComparisonSettings,
    methods: list[str],
    out: Path,
    backend: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    cpus_per_job: int = 1,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or resume) the comparison of ``methods`` (keys of :data:`METHODS`) and return the
    report: ``rows`` (one per method, table order), ``runs`` (method name -> held-out records),
    ``search`` (method name -> its tuning evaluations or training episodes, in order),
    ``task`` (metric and env facts) and ``settings``. ``backend`` ... ``cpus_per_job``: how the
    runs execute (:func:`agents.jobs.run_jobs`)."""
    settings.validate()
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if settings.agent is not None and "gns" not in methods:
        raise ValueError("a pre-trained agent was given but 'gns' is not among the methods")
    probe = gym.make(settings.env_id, **settings.env_kwargs)  # fails fast on a bad ID or kwargs
    task = probe.unwrapped.task
    probe.close()
    _check_settings(out / "settings.json", settings)
    run = functools.partial(
        run_jobs, store=ResultStore(out / "store"), backend=backend, workers=workers,
        ray_address=ray_address, cpus_per_job=cpus_per_job, log=log,
    )  # fmt: skip
    seeds = [HELD_OUT_SEED + i for i in range(settings.seeds)]
    initial_lrs = tuple(settings.initial_lrs) or tuple(float(f"{lr:.3g}") for lr in np.geomspace(*task.initial_lr_range, num=3))
    common = dict(env_id=settings.env_id, env_kwargs=settings.env_kwargs)

    grids = {m: baseline_grid(m, task, settings.grid) for m in methods if m in HAND_DESIGNED}
    search_jobs = [
        EpisodeJob(key=_tune_key(m, config), seed=TUNE_SEED, config=config, **common)
        for m, grid in grids.items()
        for config in grid
    ]
    learned = [m for m in methods if m in LEARNED]
    to_train = [m for m in learned if not (m == "gns" and settings.agent is not None)]
    search_jobs += [
        TrainJob(key=f"train/{m}", scheduler=m, episodes=settings.episodes, seed=settings.train_seed,
                 out=str(out / "agents" / m), **common)  # fmt: skip
        for m in to_train
    ]
    log(f"search: {sum(map(len, grids.values()))} baseline configuration(s) on seed {TUNE_SEED}, "
        f"{len(to_train)} agent(s) x {settings.episodes} training episodes")  # fmt: skip
    searched = run(search_jobs)

    best_configs, search, cost = {}, {}, {}
    for m, grid in grids.items():
        evaluations = [searched[_tune_key(m, config)] for config in grid]
        best_configs[m] = grid[int(np.argmax([r["final_val_metric"] for r in evaluations]))]
        search[METHODS[m]] = [{"config": r["config"], "val_metric": r["final_val_metric"]} for r in evaluations]
        cost[m] = sum(r["seconds"] for r in evaluations)
    if "cma-es" in methods:
        best_configs["cma-es"], search["CMA-ES"], cost["cma-es"] = _cma_search(settings, task, run, log)
    agents = {m: searched[f"train/{m}"]["agent"] for m in to_train}
    for m in to_train:
        trained = searched[f"train/{m}"]
        search[METHODS[m]] = [{"episode": i + 1, "val_metric": v} for i, v in enumerate(trained["final_val_metrics"])]
        cost[m] = trained["seconds"]
    if settings.agent is not None and "gns" in methods:
        agents["gns"] = settings.agent

    prefixes = {m: _test_prefix(m, agents.get(m)) for m in methods}  # each agent file hashed once
    test_jobs = []
    for m in methods:
        agent_args = (
            dict(agent=agents[m], initial_lrs=initial_lrs, criterion=settings.criterion, pre_decisions=settings.pre_decisions)
            if m in LEARNED
            else dict(config=best_configs[m])
        )
        test_jobs += [
            EpisodeJob(key=f"{prefixes[m]}/seed={s}", seed=s, evaluate_test=True, **agent_args, **common)
            for s in seeds
        ]
    log(f"test: {len(methods)} method(s) on held-out seeds {seeds}")
    tested = run(test_jobs)

    runs = {METHODS[m]: [tested[f"{prefixes[m]}/seed={s}"] for s in seeds] for m in methods}
    rows = []
    for m in methods:
        if m in LEARNED:
            chosen = ", ".join(f"{r['initial_lr']:.0e}" for r in runs[METHODS[m]])
            config = f"{agents[m]} (initial LRs {chosen})"
        else:
            config = best_configs[m].label()
        rows.append(summarize(METHODS[m], config, runs[METHODS[m]], cost.get(m)))
    return {
        "settings": asdict(settings),
        "task": {"env_id": settings.env_id, "metric": task.metric, "is_text": task.is_text, "total_steps": task.total_steps},
        "initial_lrs": list(initial_lrs),
        "rows": rows,
        "runs": runs,
        "search": search,
    }


def _cma_search(
    settings: ComparisonSettings, task: TaskSpec, run: Callable[[list], dict], log: Callable[[str], None]
) -> tuple[Schedule, list[dict], float]:
    """CMA-ES on the tuning seed, generation by generation; returns the best schedule, the
    evaluations in order and their total seconds. Stored evaluations are replayed (the search
    is deterministic given its seed and the metrics it was told)."""
    cma = CosineCMASearch(CMA_SEARCH_SPACES[task.search_space], task.total_steps, settings.cma_evaluations, seed=TUNE_SEED)
    schedules, evaluations, seconds = [], [], 0.0
    log(f"CMA-ES: {settings.cma_evaluations} evaluations of the cosine schedule on seed {TUNE_SEED}")
    while generation := cma.ask():
        jobs = [
            EpisodeJob(key=f"tune/cma-es/{len(schedules) + i:03d}", env_id=settings.env_id, seed=TUNE_SEED,
                       env_kwargs=settings.env_kwargs, config=schedule)  # fmt: skip
            for i, schedule in enumerate(generation)
        ]
        results = run(jobs)
        for job, schedule in zip(jobs, generation):
            if results[job.key]["config"] != schedule.label():
                raise RuntimeError(f"stored {job.key} was {results[job.key]['config']}, the search asks {schedule.label()}")
        metrics = [results[job.key]["final_val_metric"] for job in jobs]
        seconds += sum(results[job.key]["seconds"] for job in jobs)
        cma.tell(metrics)
        schedules += generation
        evaluations += [{"config": s.label(), "val_metric": v} for s, v in zip(generation, metrics)]
    return schedules[int(np.argmax([e["val_metric"] for e in evaluations]))], evaluations, seconds


def summarize(method: str, config: str, records: list[dict], search_seconds: float | None = None) -> dict:
    """One table row: test and validation metric mean and std (in %) over the seeds, and the
    search cost (tuning or training) in minutes (``None`` when unknown, e.g. a given agent)."""
    test = np.array([r["test_metric"] for r in records], dtype=float) * 100
    val = np.array([r["final_val_metric"] for r in records], dtype=float) * 100
    ddof = 1 if len(records) > 1 else 0
    return {
        "method": method,
        "config": config,
        "test_mean": round(float(test.mean()), 2),
        "test_std": round(float(test.std(ddof=ddof)), 2),
        "val_mean": round(float(val.mean()), 2),
        "seeds": len(records),
        "diverged": sum(bool(r["diverged"]) for r in records),
        "search_minutes": None if search_seconds is None else round(search_seconds / 60, 1),
        "test_minutes": round(sum(r["seconds"] for r in records) / 60, 1),
    }
