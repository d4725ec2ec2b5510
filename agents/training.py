"""Train any learned scheduler of :data:`agents.schedulers.LEARNED_SCHEDULERS` with GNS-PPO.

    from agents.training import train_agent
    summary = train_agent("GNS/Debug-v0", {}, scheduler="srls", episodes=2, out=Path("runs/srls"))

Writes ``<out>/agent.zip`` (load it with :meth:`agents.ppo.GNSPPO.load`), ``<out>/episodes.json``
(one record per episode, rewritten after each), ``<out>/config.json`` (with the scheduler),
TensorBoard logs under ``<out>/tb`` and ``<out>/checkpoint.zip`` / ``.json`` every
``checkpoint_every`` episodes. ``resume=True`` continues a killed run from its checkpoint up to
``episodes`` in all: episodes after the checkpoint (not yet learned from) run again and their
records are replaced; the resumed envs are seeded afresh (``seed + 1000 x episodes done``).

Errors in the arguments, the env or the checkpoint are raised by :func:`prepare_training`
(``ValueError``, or the env's own error: ``DatasetError``, ``gym.error.Error`` ...) before
anything is written or trained; ``scripts/train_gns.py`` turns exactly those into one line and
exit status 2.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.vec_env import VecEnv

import gns_env  # noqa: F401  (registers the GNS/ IDs)
from agents.callbacks import EpisodeCheckpoint, EpisodeResultsCallback
from agents.extractor import GNSExtractor
from agents.ppo import GNSPPO, make_gns_ppo
from agents.schedulers import LEARNED_SCHEDULERS, LearnedScheduler
from agents.vec_env import make_training_vec_env

_CHECKPOINT = "checkpoint"


def has_checkpoint(out: str | Path) -> bool:
    """Whether ``out`` holds a checkpoint that ``resume=True`` can continue from."""
    checkpoint = Path(out) / _CHECKPOINT
    return checkpoint.with_suffix(".zip").is_file() and checkpoint.with_suffix(".json").is_file()


def finished_training(out: str | Path, scheduler: str, episodes: int) -> dict[str, Any] | None:
    """:func:`train_agent`'s summary of the run in ``out`` if its checkpoint has learned from
    ``episodes`` episodes already (a run killed after training, before its caller stored the
    summary), else ``None``."""
    out = Path(out)
    if not (has_checkpoint(out) and (out / "agent.zip").is_file()):
        return None
    if json.loads((out / f"{_CHECKPOINT}.json").read_text())["episodes"] < episodes:
        return None
    return _summary(scheduler, out, json.loads((out / "episodes.json").read_text()))


def _summary(scheduler: str, out: Path, results: list[dict]) -> dict[str, Any]:
    return {
        "scheduler": scheduler,
        "agent": str(out / "agent.zip"),
        "episodes": len(results),
        "seconds": sum(r["seconds"] for r in results),
        "final_val_metrics": [r["final_val_metric"] for r in results],
    }


def scheduler_env_kwargs(scheduler: str, env_kwargs: dict | None) -> dict:
    """``env_kwargs`` with the scheduler's ``train_env_kwargs`` merged in.

    :raises ValueError: for an unknown scheduler, or where ``env_kwargs`` contradicts the
        scheduler (``val_prob=0.5`` for FRS or SRLS, which validate at every decision).
    """
    spec = _scheduler(scheduler)
    merged = dict(env_kwargs or {})
    for key, value in spec.train_env_kwargs.items():
        if key in merged and merged[key] != value:
            raise ValueError(
                f"scheduler {scheduler!r} ({spec.name}) trains with {key}={value!r}; "
                f"env_kwargs asks for {key}={merged[key]!r}"
            )
        merged[key] = value
    return merged


def _scheduler(key: str) -> LearnedScheduler:
    if key not in LEARNED_SCHEDULERS:
        raise ValueError(f"unknown scheduler {key!r}; known: {', '.join(LEARNED_SCHEDULERS)}")
    return LEARNED_SCHEDULERS[key]


def state_representation(policy_kwargs: dict) -> tuple[type, dict]:
    """``(features extractor class, its kwargs)`` that ``policy_kwargs`` builds."""
    return (
        policy_kwargs.get("features_extractor_class", GNSExtractor),
        dict(policy_kwargs.get("features_extractor_kwargs") or {}),
    )


@dataclass
class TrainingRun:
    """A checked training run whose envs are built; :meth:`train` runs it (once).

    Made by :func:`prepare_training`; call :meth:`close` if it is never trained.
    """

    env_id: str
    scheduler: str
    env_kwargs: dict
    episodes: int
    seed: int
    out: Path
    n_envs: int
    checkpoint_every: int
    resume: bool
    device: str
    decisions: int
    episodes_done: int
    env: VecEnv

    def close(self) -> None:
        self.env.close()

    def train(self, progress_bar: bool = False, verbose: int = 1) -> dict[str, Any]:
        """Train, save ``<out>/agent.zip``, close the envs; returns :func:`train_agent`'s summary."""
        if not self.resume and self.episodes_done >= self.episodes:
            self.env.close()
            summary = finished_training(self.out, self.scheduler, self.episodes)
            if verbose:
                print(f"{self.out} already holds this run, trained for {summary['episodes']} episode(s): nothing to train")
            return summary
        spec = LEARNED_SCHEDULERS[self.scheduler]
        extractor, extractor_kwargs = state_representation(spec.policy_kwargs)
        checkpoint = self.out / _CHECKPOINT
        done = self.episodes_done
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            config = {
                "env": self.env_id,
                "scheduler": self.scheduler,
                "scheduler_name": spec.name,
                "features_extractor": f"{extractor.__module__}.{extractor.__qualname__}",
                "features_extractor_kwargs": extractor_kwargs,
                "episodes": self.episodes,
                "seed": self.seed,
                "out": str(self.out),
                "n_envs": self.n_envs,
                "device": self.device,
                "checkpoint_every": self.checkpoint_every,
                "resume": self.resume,
                "progress_bar": progress_bar,
                "env_kwargs": self.env_kwargs,
                "decisions_per_episode": self.decisions,
            }
            (self.out / "config.json").write_text(json.dumps(config, indent=2))

            results: list[dict] = []
            if self.resume:
                agent = GNSPPO.load(checkpoint.with_suffix(".zip"), env=self.env, device=self.device)
                agent.set_random_seed(self.seed + 1000 * done)  # load re-applies the run's first seed to the envs
                results = json.loads((self.out / "episodes.json").read_text())[:done]
                if verbose:
                    print(f"resuming after {done} episode(s) ({agent.num_timesteps} decisions)")
            else:
                agent = make_gns_ppo(
                    self.env,
                    policy_kwargs={**spec.policy_kwargs},
                    seed=self.seed,
                    device=self.device,
                    tensorboard_log=str(self.out / "tb"),
                )
            results_callback = EpisodeResultsCallback(self.out / "episodes.json", verbose=verbose, results=results)
            checkpoints = EpisodeCheckpoint(checkpoint, self.checkpoint_every, episodes_done=done)
            start = time.perf_counter()
            agent.learn(
                total_timesteps=max(self.episodes * self.decisions - agent.num_timesteps, 0),
                callback=[results_callback, checkpoints],
                progress_bar=progress_bar,
                reset_num_timesteps=not self.resume,
            )
            seconds = time.perf_counter() - start
            agent.save(self.out / "agent.zip")
        finally:
            self.env.close()
        if verbose:
            trained = len(results_callback.results) - done
            print(f"trained {trained} episode(s) of {spec.name} in {seconds:.0f} s; agent: {self.out / 'agent.zip'}")
        return _summary(self.scheduler, self.out, results_callback.results)


def _check_same_run(out: Path, requested: dict) -> None:
    """The run in ``out`` must be the one asked for: same env, scheduler, env kwargs and seed."""
    config_path = out / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{out} has a checkpoint but no config.json: it was not written by train_agent")
    config = json.loads(config_path.read_text())
    requested = json.loads(json.dumps(requested))  # tuples -> lists, as stored
    differing = [f"{k}: checkpoint {config.get(k)!r}, now {v!r}" for k, v in requested.items() if config.get(k) != v]
    if differing:
        raise ValueError(f"{out} holds another training run ({'; '.join(differing)}); choose another --out")


def prepare_training(
    env_id: str,
    env_kwargs: dict | None,
    *,
    scheduler: str = "gns",
    episodes: int = 5,
    seed: int = 0,
    out: str | Path,
    n_envs: int = 1,
    checkpoint_every: int = 1,
    resume: bool = False,
    device: str = "auto",
) -> TrainingRun:
    """Check every argument of :func:`train_agent`, make one env to fail fast on a bad ID, kwargs
    or missing data, and build the training envs. Writes nothing.

    :raises ValueError: bad numbers, unknown scheduler, env_kwargs contradicting it, another
        run in ``out`` (other env, scheduler, env kwargs or seed), an unfinished one without
        ``resume``, ``resume`` without a checkpoint or with no episodes left. The same run,
        finished, is not trained again: :meth:`TrainingRun.train` returns its summary.
        the env's own errors (``gym.error.Error``, ``DatasetError`` ...) pass through.
    """
    out = Path(out)
    for name, value in (("episodes", episodes), ("n_envs", n_envs), ("checkpoint_every", checkpoint_every)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    merged = scheduler_env_kwargs(scheduler, env_kwargs)
    done = 0
    this_run = {"env": env_id, "scheduler": scheduler, "env_kwargs": merged, "seed": seed}
    if not resume and (has_checkpoint(out) or (out / "agent.zip").is_file()):
        _check_same_run(out, this_run)
        if not has_checkpoint(out):  # agent.zip alone: trained with checkpoint_every > episodes
            raise ValueError(f"{out} holds an agent of this training but no checkpoint to count or continue it; choose another --out")
        if finished_training(out, scheduler, episodes) is None:
            stored = json.loads((out / f"{_CHECKPOINT}.json").read_text())["episodes"]
            raise ValueError(
                f"{out} holds this training with {stored} of the {episodes} episodes asked for: "
                "continue it with --resume, or choose another --out"
            )
        done = episodes  # this very run is finished: train() only reports it
    if resume:
        if not has_checkpoint(out):
            raise ValueError(f"resume: no checkpoint in {out}")
        _check_same_run(out, this_run)
        checkpoint = out / _CHECKPOINT
        done = json.loads(checkpoint.with_suffix(".json").read_text())["episodes"]
        if episodes <= done:
            raise ValueError(f"resume: the checkpoint in {out} has {done} episodes already; ask for more episodes")
    probe = gym.make(env_id, **merged)
    decisions = probe.unwrapped.task.num_decisions
    probe.close()
    env = make_training_vec_env(env_id, merged, n_envs, seed)
    return TrainingRun(
        env_id=env_id, scheduler=scheduler, env_kwargs=merged, episodes=episodes, seed=seed, out=out,
        n_envs=n_envs, checkpoint_every=checkpoint_every, resume=resume, device=device,
        decisions=decisions, episodes_done=done, env=env,
    )  # fmt: skip


def train_agent(
    env_id: str,
    env_kwargs: dict | None,
    *,
    scheduler: str = "gns",
    episodes: int = 5,
    seed: int = 0,
    out: str | Path,
    n_envs: int = 1,
    checkpoint_every: int = 1,
    resume: bool = False,
    device: str = "auto",
    progress_bar: bool = False,
    verbose: int = 1,
) -> dict[str, Any]:
    """Train the learned scheduler ``scheduler`` on ``env_id`` for ``episodes`` episodes.

    :param env_kwargs: env overrides; the scheduler's ``train_env_kwargs`` are merged in and
        must not be contradicted (``ValueError``).
    :param scheduler: a key of :data:`agents.schedulers.LEARNED_SCHEDULERS`.
    :param episodes: episodes in all (including those of the checkpoint when resuming); rounded up
        to whole PPO updates.
    :param out: output folder (see the module docstring for what is written).
    :param n_envs: parallel envs (``SubprocVecEnv`` when > 1); env ``i`` is seeded ``seed + i``.
    :param checkpoint_every: episodes between checkpoints.
    :param resume: continue from ``<out>/checkpoint.zip``; an error without one (test first with
        :func:`has_checkpoint`).
    :param device: the agent's device (the env has its own ``device`` kwarg).
    :param verbose: 1 prints a line per episode and a summary; SB3's own logger stays quiet.
    :returns: ``{"scheduler", "agent"`` (path of agent.zip), ``"episodes"`` (episode records,
        resumed ones included), ``"seconds"`` (the episodes' wall clock, PPO updates and resumed episodes included),
        ``"final_val_metrics"`` (per episode record; NaN where it diverged)``}``.
    """
    run = prepare_training(
        env_id, env_kwargs, scheduler=scheduler, episodes=episodes, seed=seed, out=out, n_envs=n_envs,
        checkpoint_every=checkpoint_every, resume=resume, device=device,
    )  # fmt: skip
    return run.train(progress_bar=progress_bar, verbose=verbose)
