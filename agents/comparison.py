"""Compare schedulers the paper's way (§5.1, §4.3, App. E.7) on any env, resumably.

1. **Search**: every hand-designed baseline runs each configuration of its grid once on the
   tuning seed; CMA-ES searches the cosine schedule's parameters on the same seed; every
   learned scheduler trains for ``episodes`` episodes.
2. **Test**: each baseline's best configuration (final validation metric) and each trained agent
   run on the held-out seeds; an agent starts from the candidate initial LR its critic values
   highest after ``T_pre`` steps.
3. **Report**: per method, the test metric mean ± std, the search cost in wall-clock minutes
   (grid or CMA-ES evaluations vs. agent training, §5.5) and the chosen configuration.

**Transfer** (:func:`run_transfer`, paper §5.4): phase 1 on one env, phase 2 on another.

Every run is a job of :mod:`agents.jobs` stored under ``<out>/store``; running the same
comparison again reuses what is stored and runs only what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from agents.apply import check_observation_space
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
from gns_env.tasks import PRESETS, TaskSpec

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


def _check_settings(path: Path, settings: dict) -> None:
    """Store ``settings`` in a new output folder; in an existing one they must be the same."""
    current = json.loads(json.dumps(settings))  # tuples -> lists, as stored
    if path.is_file():
        stored = json.loads(path.read_text())
        differing = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        if differing:
            changes = "; ".join(f"{k}: stored {stored.get(k)!r}, now {current.get(k)!r}" for k in differing)
            raise ValueError(
                f"{path.parent} holds a comparison with other settings ({changes}); "
                "use another --out or the same settings"
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


@dataclass
class SearchOutcome:
    """What the search phase chose: ``configs`` (hand-designed or CMA-ES method -> best
    configuration), ``agents`` (learned method -> agent path), ``evaluations`` (method name ->
    its tuning evaluations or training episodes, in order) and ``seconds`` (method -> cost)."""

    configs: dict[str, Schedule | HypergradientConfig] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    evaluations: dict[str, list[dict]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _probe_task(env_id: str, env_kwargs: dict) -> tuple[TaskSpec, gym.spaces.Space]:
    """The task and observation space of an env; fails fast on a bad ID, kwargs or a non-GNS env."""
    probe = gym.make(env_id, **env_kwargs)
    task, space = getattr(probe.unwrapped, "task", None), probe.observation_space
    probe.close()
    if not isinstance(task, TaskSpec):
        raise ValueError(f"{env_id} is not a GNS-env learning-rate env (no task); compare.py runs the GNS/ IDs")
    return task, space


def _runner(out: Path, backend: str, workers: int, ray_address: str | None, cpus_per_job: int, log) -> Callable:
    return functools.partial(
        run_jobs, store=ResultStore(out / "store"), backend=backend, workers=workers,
        ray_address=ray_address, cpus_per_job=cpus_per_job, log=log,
    )  # fmt: skip


def _validate(settings: ComparisonSettings, methods: list[str]) -> None:
    settings.validate()
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if settings.agent is not None and "gns" not in methods:
        raise ValueError("a pre-trained agent was given but 'gns' is not among the methods")


def _check_agent_settings(settings: ComparisonSettings, methods: list[str], task: TaskSpec) -> None:
    """The agents' initial-LR candidates and T_pre must fit the env they are tested on."""
    if not any(m in LEARNED for m in methods):
        return
    low, high = task.lr_bounds
    outside = [lr for lr in settings.initial_lrs if not low <= lr <= high]
    if outside:
        raise ValueError(f"initial_lrs {outside} lie outside {task.env_id}'s lr_bounds={task.lr_bounds}")
    if settings.pre_decisions > task.num_decisions:
        raise ValueError(
            f"pre_decisions={settings.pre_decisions} exceeds the {task.num_decisions} decisions of a {task.env_id} episode"
        )


def _search(
    settings: ComparisonSettings, methods: list[str], task: TaskSpec, out: Path, run: Callable, log: Callable
) -> SearchOutcome:
    """Phase 1 on ``settings.env_id``: grids and CMA-ES on the tuning seed, agents trained."""
    common = dict(env_id=settings.env_id, env_kwargs=settings.env_kwargs)
    grids = {m: baseline_grid(m, task, settings.grid) for m in methods if m in HAND_DESIGNED}
    search_jobs = [
        EpisodeJob(key=_tune_key(m, config), seed=TUNE_SEED, config=config, **common)
        for m, grid in grids.items()
        for config in grid
    ]
    to_train = [m for m in methods if m in LEARNED and not (m == "gns" and settings.agent is not None)]
    search_jobs += [
        TrainJob(key=f"train/{m}", scheduler=m, episodes=settings.episodes, seed=settings.train_seed,
                 out=str(out / "agents" / m), **common)  # fmt: skip
        for m in to_train
    ]
    log(f"search: {sum(map(len, grids.values()))} baseline configuration(s) on seed {TUNE_SEED}, "
        f"{len(to_train)} agent(s) to train for {settings.episodes} episodes")  # fmt: skip
    searched = run(search_jobs)

    outcome = SearchOutcome()
    for m, grid in grids.items():
        evaluations = [searched[_tune_key(m, config)] for config in grid]
        outcome.configs[m] = grid[int(np.argmax([r["final_val_metric"] for r in evaluations]))]
        outcome.evaluations[METHODS[m]] = [{"config": r["config"], "val_metric": r["final_val_metric"]} for r in evaluations]
        outcome.seconds[m] = sum(r["seconds"] for r in evaluations)
    if "cma-es" in methods:
        outcome.configs["cma-es"], outcome.evaluations["CMA-ES"], outcome.seconds["cma-es"] = _cma_search(settings, task, run, log)
    for m in to_train:
        trained = searched[f"train/{m}"]
        outcome.agents[m] = trained["agent"]
        outcome.evaluations[METHODS[m]] = [{"episode": i + 1, "val_metric": v} for i, v in enumerate(trained["final_val_metrics"])]
        outcome.seconds[m] = trained["seconds"]
    if settings.agent is not None and "gns" in methods:
        outcome.agents["gns"] = settings.agent
    return outcome


def _test(
    settings: ComparisonSettings,
    methods: list[str],
    outcome: SearchOutcome,
    env_id: str,
    env_kwargs: dict,
    task: TaskSpec,
    run: Callable,
    log: Callable,
) -> dict:
    """Phase 2 on ``env_id`` (the search's env, or a transfer target): each method's chosen
    configuration or agent on the held-out seeds. Returns the report (see :func:`run_comparison`)."""
    seeds = [HELD_OUT_SEED + i for i in range(settings.seeds)]
    initial_lrs = tuple(settings.initial_lrs) or tuple(float(f"{lr:.3g}") for lr in np.geomspace(*task.initial_lr_range, num=3))
    configs = {m: retarget(config, task) for m, config in outcome.configs.items()}
    prefixes = {m: _test_prefix(m, outcome.agents.get(m)) for m in methods}  # each agent file hashed once
    test_jobs = []
    for m in methods:
        agent_args = (
            dict(agent=outcome.agents[m], initial_lrs=initial_lrs, criterion=settings.criterion, pre_decisions=settings.pre_decisions)
            if m in LEARNED
            else dict(config=configs[m])
        )
        test_jobs += [
            EpisodeJob(key=f"{prefixes[m]}/seed={s}", env_id=env_id, env_kwargs=env_kwargs, seed=s,
                       evaluate_test=True, **agent_args)  # fmt: skip
            for s in seeds
        ]
    log(f"test on {env_id}: {len(methods)} method(s) on held-out seeds {seeds}")
    tested = run(test_jobs)

    runs = {METHODS[m]: [tested[f"{prefixes[m]}/seed={s}"] for s in seeds] for m in methods}
    rows = []
    for m in methods:
        if m in LEARNED:
            chosen = ", ".join(f"{r['initial_lr']:.0e}" for r in runs[METHODS[m]])
            config = f"{outcome.agents[m]} (initial LRs {chosen})"
        else:
            config = configs[m].label()
        rows.append(summarize(METHODS[m], config, runs[METHODS[m]], outcome.seconds.get(m)))
    return {
        "settings": asdict(settings),
        "task": {"env_id": env_id, "metric": task.metric, "is_text": task.is_text, "total_steps": task.total_steps},
        "initial_lrs": list(initial_lrs),
        "rows": rows,
        "runs": runs,
        "search": outcome.evaluations,
    }


def retarget(config: Schedule | HypergradientConfig, task: TaskSpec) -> Schedule | HypergradientConfig:
    """A configuration tuned on one task, for ``task``: a schedule keeps its parameters, which are
    fractions of T (eta1, eta2) and LRs, and takes ``task``'s T (paper §5.4 "adopt the best
    hyperparameter configuration"); Adam-HD's (alpha0, beta) carry over as they are."""
    if isinstance(config, Schedule) and config.total_steps != task.total_steps:
        return dataclasses.replace(config, total_steps=task.total_steps)
    return config


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
    _validate(settings, methods)
    task, _ = _probe_task(settings.env_id, settings.env_kwargs)
    _check_agent_settings(settings, methods, task)
    _check_settings(out / "settings.json", asdict(settings))
    run = _runner(out, backend, workers, ray_address, cpus_per_job, log)
    outcome = _search(settings, methods, task, out, run, log)
    return _test(settings, methods, outcome, settings.env_id, settings.env_kwargs, task, run, log)


def transfer_folder(out: Path, target_env_id: str) -> Path:
    """Where the transfer of the comparison in ``out`` to ``target_env_id`` is stored."""
    return out / "transfer" / target_env_id.replace("/", "_")


def check_transfer(
    settings: ComparisonSettings, methods: list[str], target_env_id: str, target_env_kwargs: dict | None = None
) -> tuple[TaskSpec, TaskSpec]:
    """Everything :func:`run_transfer` checks before it runs or writes anything: the settings
    and methods, both envs, that the agents trained on the source can observe the target, and
    that their initial-LR candidates and T_pre fit it. Returns the source and target tasks."""
    _validate(settings, methods)
    source_preset, target_preset = PRESETS.get(settings.env_id), PRESETS.get(target_env_id)
    if source_preset and target_preset and source_preset.is_text != target_preset.is_text:  # before loading data
        kinds = ["an image task", "a text task"]
        raise ValueError(
            f"{settings.env_id} is {kinds[source_preset.is_text]} and {target_env_id} {kinds[target_preset.is_text]}: "
            "their optimizers and search spaces differ, so transfer stays within images or within text"
        )
    source_task, source_space = _probe_task(settings.env_id, settings.env_kwargs)
    target_task, target_space = _probe_task(target_env_id, dict(target_env_kwargs or {}))
    if any(m in LEARNED for m in methods):
        observer = f"the agent {settings.agent}" if settings.agent else f"agents trained on {settings.env_id}"
        check_observation_space(source_space, target_space, target_env_id, observer=observer)
    _check_agent_settings(settings, methods, target_task)
    return source_task, target_task


def run_transfer(
    settings: ComparisonSettings,
    methods: list[str],
    out: Path,
    target_env_id: str,
    target_env_kwargs: dict | None = None,
    backend: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    cpus_per_job: int = 1,
    log: Callable[[str], None] = print,
) -> dict:
    """Paper §5.4 / Table 3: the search of the comparison ``settings`` in ``out`` (run or resumed
    there, shared with :func:`run_comparison` of the same settings), then every method tested on
    ``target_env_id``: the baselines with their configurations tuned on ``settings.env_id``, the
    agents trained there, applied directly. The tests are stored in :func:`transfer_folder`;
    returns the report of :func:`run_comparison` with ``task["source_env_id"]`` and
    ``task["env_kwargs"]`` (the target's)."""
    target_env_kwargs = dict(target_env_kwargs or {})
    source_task, target_task = check_transfer(settings, methods, target_env_id, target_env_kwargs)
    folder = transfer_folder(out, target_env_id)
    _check_settings(out / "settings.json", asdict(settings))
    _check_settings(folder / "settings.json", {"env_id": target_env_id, "env_kwargs": target_env_kwargs})
    runner = functools.partial(_runner, backend=backend, workers=workers, ray_address=ray_address,
                               cpus_per_job=cpus_per_job, log=log)  # fmt: skip
    outcome = _search(settings, methods, source_task, out, runner(out), log)
    report = _test(settings, methods, outcome, target_env_id, target_env_kwargs, target_task, runner(folder), log)
    report["task"].update(source_env_id=settings.env_id, env_kwargs=target_env_kwargs)
    return report


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
