"""SB3 callbacks of a training run: one result per finished episode, and resumable checkpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


class EpisodeResultsCallback(BaseCallback):
    """After every finished episode: log to SB3's logger (TensorBoard) and rewrite a JSON list.

    Each record: ``episode``, ``env_index``, ``return`` (sum of env rewards = final minus
    initial validation metric, or the divergence penalty), ``final_val_metric``, ``final_lr``,
    ``initial_lr``, ``diverged``, ``decisions``, ``seconds``, ``timesteps``.

    :param path: JSON file to (re)write after every episode; ``None`` keeps results in memory.
    :param results: records of earlier episodes when a run resumes (numbering continues).
    """

    def __init__(self, path: str | Path | None = None, verbose: int = 0, results: list[dict] | None = None) -> None:
        super().__init__(verbose)
        self.path = Path(path) if path is not None else None
        self.results: list[dict] = list(results or [])

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._returns = np.zeros(n)
        self._decisions = np.zeros(n, dtype=int)
        self._initial_lr = [self._reset_lr(i) for i in range(n)]
        self._last_metric = [float("nan")] * n
        self._started = [time.perf_counter()] * n

    def _reset_lr(self, i: int) -> float | None:
        """LR of env ``i`` after its latest reset (VecEnvs keep the reset infos)."""
        infos = getattr(self.training_env, "reset_infos", None)
        return infos[i].get("lr") if infos else None

    def _on_step(self) -> bool:
        for i, (info, reward, done) in enumerate(zip(self.locals["infos"], self.locals["rewards"], self.locals["dones"])):
            self._returns[i] += float(reward)
            self._decisions[i] += 1
            if info.get("validated"):
                self._last_metric[i] = info["val_metric"]
            if done:
                self._finish(i, info)
        return True

    def _finish(self, i: int, info: dict) -> None:
        now = time.perf_counter()
        record = {
            "episode": len(self.results) + 1,
            "env_index": i,
            "return": float(self._returns[i]),
            "final_val_metric": float("nan") if info["diverged"] else float(self._last_metric[i]),
            "final_lr": float(info["lr"]),
            "initial_lr": self._initial_lr[i],
            "diverged": bool(info["diverged"]),
            "decisions": int(self._decisions[i]),
            "seconds": round(now - self._started[i], 2),
            "timesteps": int(self.num_timesteps),
        }
        self.results.append(record)
        for key in ("return", "final_val_metric", "final_lr", "diverged"):
            self.logger.record(f"episode/{key}", float(record[key]))
        if self.verbose:
            print(
                f"episode {record['episode']}: val {record['final_val_metric']:.4f} "
                f"return {record['return']:+.4f} final lr {record['final_lr']:.2e}"
                + (" DIVERGED" if record["diverged"] else "")
            )
        if self.path is not None:
            self.path.write_text(json.dumps(self.results, indent=2))
        self._returns[i], self._decisions[i], self._initial_lr[i] = 0.0, 0, self._reset_lr(i)
        self._last_metric[i], self._started[i] = float("nan"), now


class EpisodeCheckpoint(BaseCallback):
    """Save the agent every ``every`` finished episodes, once PPO has trained on them.

    SB3 trains after a rollout is collected, so the save happens when the next rollout starts
    (and once more when training ends): the checkpoint holds the policy, its optimizer state and
    ``num_timesteps``, and ``<path>.json`` the number of episodes it has learned from, so
    ``train_gns.py --resume`` repeats no episode and loses none but those after the checkpoint.

    :param path: checkpoint file without suffix (``<path>.zip`` and ``<path>.json`` are written).
    :param every: episodes between checkpoints.
    :param episodes_done: episodes already learned from when a run resumes.
    """

    def __init__(self, path: str | Path, every: int, episodes_done: int = 0) -> None:
        super().__init__()
        if every <= 0:
            raise ValueError(f"every must be a positive number of episodes, got {every}")
        self.path = Path(path)
        self.every = every
        self.episodes_done = self.saved_at = episodes_done
        self._untrained = 0  # episodes finished in the rollout being collected

    def _on_step(self) -> bool:
        self._untrained += int(np.sum(self.locals["dones"]))
        return True

    def _on_rollout_start(self) -> None:
        self._count_trained()
        if self.episodes_done - self.saved_at >= self.every:
            self.save()

    def _on_training_end(self) -> None:
        self._count_trained()
        if self.episodes_done > self.saved_at:
            self.save()

    def _count_trained(self) -> None:
        """Called once the PPO update on the last rollout has run."""
        self.episodes_done += self._untrained
        self._untrained = 0

    def save(self) -> None:
        self.model.save(self.path.with_suffix(".zip"))
        meta = {"episodes": self.episodes_done, "timesteps": int(self.model.num_timesteps)}
        self.path.with_suffix(".json").write_text(json.dumps(meta))
        self.saved_at = self.episodes_done
