"""PPO for GNS: Stable-Baselines3's PPO whose rollout buffer applies Eq. 3 before GAE.

The env pays the validation-metric change only at validated decisions (``info["validated"]``).
:class:`SpreadRewardRolloutBuffer` records, per env and step, whether the step closed a
segment (validated, or the episode ended) and, before returns and advantages are computed,
replaces the rewards of each segment by their mean (:func:`gns_env.rewards.spread_rewards`).

With one episode per update (``n_steps`` = decisions per episode, the paper's Algorithm 1) every
segment lies inside one rollout. In general a segment may start in an earlier rollout: its
change is then spread over its steps in the current rollout (the earlier ones are already
trained on), so no reward is lost or counted twice; steps after the last validation of a
rollout keep reward 0 and are bootstrapped by the value function as usual.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import DictRolloutBuffer

from agents.policy import GNSPolicy
from gns_env.rewards import spread_rewards

#: Paper hyperparameters (§5.1, App. D): Adam 0.001 actor / 0.005 critic, gamma 0.99,
#: lambda 0.95, clip 0.2, entropy coefficient 0.01.
PAPER_PPO_KWARGS: dict[str, Any] = dict(
    learning_rate=1e-3,
    gamma=0.99,
    gae_lambda=0.95,
    clip_range=0.2,
    ent_coef=0.01,
)


class SpreadRewardRolloutBuffer(DictRolloutBuffer):
    """:class:`DictRolloutBuffer` that spreads rewards between validations (Eq. 3).

    :ivar segment_ends: ``(buffer_size, n_envs)`` bool, True where a step closed a segment.
    """

    def reset(self) -> None:
        super().reset()
        self.segment_ends = np.zeros((self.buffer_size, self.n_envs), dtype=bool)

    def record_segment_ends(self, infos: list[dict], dones: np.ndarray) -> None:
        """Mark the step about to be added (``self.pos``): validated or episode over."""
        validated = np.array([bool(info.get("validated", True)) for info in infos])
        self.segment_ends[self.pos] = validated | np.asarray(dones, dtype=bool)

    def compute_returns_and_advantage(self, last_values: torch.Tensor, dones: np.ndarray) -> None:
        self.rewards = spread_rewards(self.rewards, self.segment_ends).astype(np.float32)
        super().compute_returns_and_advantage(last_values, dones)


class GNSPPO(PPO):
    """PPO with :class:`SpreadRewardRolloutBuffer` and per-group learning rates.

    The policy optimizer has an actor and a critic parameter group; the learning-rate schedule
    gives the actor's LR and each group keeps its ratio (``lr_ratio``) to it.
    Use :func:`make_gns_ppo` for the paper's configuration.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rollout_buffer_class", SpreadRewardRolloutBuffer)
        super().__init__(*args, **kwargs)

    def _update_info_buffer(self, infos: list[dict], dones: np.ndarray | None = None) -> None:
        # Called once per env step in collect_rollouts, right before rollout_buffer.add().
        super()._update_info_buffer(infos, dones)
        if isinstance(self.rollout_buffer, SpreadRewardRolloutBuffer) and dones is not None:
            self.rollout_buffer.record_segment_ends(infos, dones)

    def _update_learning_rate(self, optimizers) -> None:
        lr = self.lr_schedule(self._current_progress_remaining)
        self.logger.record("train/learning_rate", lr)
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_ratio", 1.0)


def load_agent_file(path: str | os.PathLike, device: str = "cpu") -> GNSPPO:
    """The agent saved at ``path`` (``agent.zip`` of ``scripts/train_gns.py``).

    :raises ValueError: one line for a missing file or one SB3 cannot load as a GNS agent
        (not a zip, no SB3 data, an agent of a non-graph observation space).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"agent {path} is a folder; pass the agent file in it ({path / 'agent.zip'})")
    if not path.is_file():
        raise ValueError(f"agent {path} does not exist; train one with scripts/train_gns.py")
    try:
        return GNSPPO.load(path, device=device)
    # SB3's errors for foreign files: not a zip (ValueError), missing entries (KeyError,
    # AssertionError "No data found"), a policy of a non-Dict space (AttributeError).
    except (ValueError, KeyError, OSError, AssertionError, AttributeError) as err:
        raise ValueError(f"{path} is not an agent saved by scripts/train_gns.py ({type(err).__name__}: {err})") from err


def make_gns_ppo(env, n_steps: int | None = None, policy_kwargs: dict | None = None, **overrides: Any) -> GNSPPO:
    """GNS-PPO with the paper's hyperparameters on ``env`` (a Gymnasium env or a VecEnv).

    :param n_steps: decisions per env per update; default one episode (``task.num_decisions``),
        as in Algorithm 1, or two episodes where an episode has a single decision and one env
        (PPO normalises advantages over the batch, which needs at least two samples).
    :param policy_kwargs: passed to :class:`agents.policy.GNSPolicy` (``action_std``,
        ``critic_lr_ratio``, ``features_extractor_kwargs`` ...).
    :param overrides: any other :class:`~stable_baselines3.PPO` argument (``seed``,
        ``tensorboard_log``, ``device``, ``verbose`` ...).
    """
    num_envs = getattr(env, "num_envs", 1)
    if n_steps is None:
        task = env.get_attr("task")[0] if hasattr(env, "get_attr") else env.unwrapped.task
        n_steps = task.num_decisions * (2 if task.num_decisions * num_envs < 2 else 1)
    if n_steps * num_envs < 2:
        raise ValueError(f"n_steps x n_envs = {n_steps * num_envs}: a PPO update needs at least 2 decisions")
    kwargs = {**PAPER_PPO_KWARGS, "n_steps": n_steps, "batch_size": n_steps * num_envs, **overrides}
    return GNSPPO(GNSPolicy, env, policy_kwargs=policy_kwargs or {}, **kwargs)
