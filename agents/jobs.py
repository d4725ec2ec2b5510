"""The units of work of a comparison, a store that keeps every finished one, and the backends
that run them (in this process, in local worker processes, or on a Ray cluster).

A job is a frozen dataclass with a ``key`` (a relative path such as ``test/Cosine/seed=20000``).
:func:`run_jobs` skips every job whose key the :class:`ResultStore` already holds and stores each
result the moment it finishes, so a killed comparison loses only the jobs that were running.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Union

import gymnasium as gym
import torch

from agents.apply import best_candidate, initial_lr_scores, run_episode
from agents.vec_env import threads_per_worker

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class EpisodeJob:
    """One episode of ``env_id`` on ``seed``, driven by a baseline configuration or an agent.

    :param config: a baseline configuration with ``reset_options()`` (``Schedule``,
        ``HypergradientConfig``); ``None`` with ``agent``.
    :param agent: path of a saved agent; it starts from the candidate of ``initial_lrs`` that
        scores best under ``criterion`` after ``pre_decisions`` decisions (paper §4.3).
    :param evaluate_test: also measure the test metric at the end.
    """

    key: str
    env_id: str
    seed: int
    env_kwargs: dict = field(default_factory=dict)
    config: Any = None
    agent: str | None = None
    initial_lrs: tuple[float, ...] = ()
    criterion: str = "value"
    pre_decisions: int = 1
    evaluate_test: bool = False


@dataclass(frozen=True)
class TrainJob:
    """Train learned scheduler ``scheduler`` (a key of ``agents.schedulers.LEARNED_SCHEDULERS``)
    for ``episodes`` episodes into ``out``; resumes from ``out``'s checkpoint when there is one."""

    key: str
    env_id: str
    scheduler: str
    episodes: int
    seed: int
    out: str
    env_kwargs: dict = field(default_factory=dict)


Job = Union[EpisodeJob, TrainJob]

_ENVS: dict[str, gym.Env] = {}  # one env per (ID, kwargs) and process: data is loaded once
_AGENTS: dict[tuple[str, float], Any] = {}


def _env(env_id: str, env_kwargs: dict) -> gym.Env:
    key = json.dumps([env_id, env_kwargs], sort_keys=True, default=str)
    if key not in _ENVS:
        import gns_env  # noqa: F401  (a fresh worker must register the GNS/ IDs)

        _ENVS[key] = gym.make(env_id, **env_kwargs)
    return _ENVS[key]


def _agent(path: str):
    from agents.ppo import GNSPPO

    key = (path, os.path.getmtime(path))  # a retrained agent at the same path is reloaded
    if key not in _AGENTS:
        _AGENTS[key] = GNSPPO.load(path, device="cpu")
    return _AGENTS[key]


def run_job(job: Job) -> dict:
    """Run one job and return its result as a JSON-ready dict."""
    if isinstance(job, TrainJob):
        from agents.training import finished_training, has_checkpoint, train_agent

        out = Path(job.out)
        finished = finished_training(out, job.scheduler, job.episodes)
        if finished is not None:
            return finished
        return train_agent(
            job.env_id, job.env_kwargs, scheduler=job.scheduler, episodes=job.episodes, seed=job.seed, out=out,
            resume=has_checkpoint(out), verbose=0,
        )  # fmt: skip
    env = _env(job.env_id, job.env_kwargs)
    if job.agent is None:
        record = run_episode(env, job.seed, job.config.reset_options(), evaluate_test=job.evaluate_test)
        return {**asdict(record), "config": job.config.label()}
    agent = _agent(job.agent)
    scores = initial_lr_scores(agent, env, job.seed, job.initial_lrs, job.criterion, job.pre_decisions)
    chosen = best_candidate(job.initial_lrs, scores)
    record = run_episode(env, job.seed, {"initial_lr": chosen}, agent=agent, evaluate_test=job.evaluate_test)
    return {**asdict(record), "candidates": list(job.initial_lrs), "scores": scores}


class ResultStore:
    """One JSON file per finished job: ``<root>/<key>.json``, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()

    def get(self, key: str) -> dict:
        return json.loads(self._path(key).read_text())

    def put(self, key: str, result: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, path)  # a kill mid-write never leaves a half-written result


class JobsFailed(RuntimeError):
    """Some jobs raised; the others' results are stored, so running again retries only these."""


def run_jobs(
    jobs: Sequence[Job],
    store: ResultStore,
    backend: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    cpus_per_job: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Run the jobs ``store`` does not hold yet, store each result as it finishes, and return
    the results of all ``jobs`` by key.

    :param backend: ``"local"``: in this process (``workers=1``) or in ``workers`` spawned
        processes with ``cores // workers`` torch threads each; ``"ray"``: one Ray task per job,
        each asking for ``cpus_per_job`` CPUs and using that many torch threads (Ray places them).
    :param ray_address: the Ray cluster to join (``None`` starts a local Ray).
    :raises JobsFailed: after every other job has finished, if some raised.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if workers <= 0:
        raise ValueError(f"workers must be positive, got {workers}")
    todo = [job for job in jobs if job.key not in store]
    if len(todo) < len(jobs):
        log(f"  {len(jobs) - len(todo)} of {len(jobs)} job(s) already done: reusing their stored results")
    failures: list[str] = []

    def finished(job: Job, result: dict | None, error: BaseException | None, seconds: float) -> None:
        if error is not None:
            failures.append(f"{job.key}: {type(error).__name__}: {error}")
            log(f"  FAILED {job.key}: {error}")
            return
        store.put(job.key, result)
        log(f"  done {job.key} ({seconds:.0f} s)")

    if todo:
        if backend == "ray":
            _run_on_ray(todo, finished, cpus_per_job, ray_address)
        else:
            _run_in_process(todo, finished, workers)
    if failures:
        raise JobsFailed(f"{len(failures)} job(s) failed (rerun to retry them):\n" + "\n".join(failures))
    return {job.key: store.get(job.key) for job in jobs}


def _timed(job: Job, threads: int | None = None) -> tuple[dict, float]:
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    return run_job(job), time.perf_counter() - start


def _run_in_process(todo: Iterable[Job], finished: Callable, workers: int) -> None:
    if workers == 1:
        for job in todo:
            start = time.perf_counter()
            try:
                result, seconds = _timed(job)
            except Exception as err:  # noqa: BLE001  (reported by run_jobs, the others still run)
                finished(job, None, err, time.perf_counter() - start)
            else:
                finished(job, result, None, seconds)
        return
    pool = ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_worker_setup, initargs=(os.getpid(),)
    )
    try:
        futures = {pool.submit(_timed, job, threads_per_worker(workers)): job for job in todo}
        for future in as_completed(futures):
            error = future.exception()
            result, seconds = (None, 0.0) if error else future.result()
            finished(futures[future], result, error, seconds)
    except BaseException:  # Ctrl-C, SystemExit, a failing store: stop the running jobs too
        _terminate_workers(pool)
        raise
    pool.shutdown()


def _worker_setup(parent_pid: int) -> None:
    """In each worker: leave Ctrl-C to the parent (it stops the workers), and exit as soon as
    the parent is gone (killed by SIGTERM/SIGKILL), instead of finishing a job nobody stores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_with_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Kill ``pool``'s workers now (``shutdown`` alone waits for the running jobs)."""
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    for process in list((pool._processes or {}).values()):  # what terminate_workers does
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _run_on_ray(todo: Sequence[Job], finished: Callable, cpus_per_job: int, ray_address: str | None) -> None:
    try:
        import ray
    except ImportError as err:
        raise ImportError("--backend ray needs Ray: pip install -e '.[ray]'") from err
    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=cpus_per_job)(_timed)
    pending = {remote.remote(job, cpus_per_job): job for job in todo}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(done[0])
        try:
            result, seconds = ray.get(done[0])
        except Exception as err:  # noqa: BLE001  (a task's error, re-raised by Ray)
            finished(job, None, err, 0.0)
        else:
            finished(job, result, None, seconds)

