"""The learned schedulers of the paper, all trained by the same GNS-PPO (:mod:`agents.ppo`).

Every entry uses :class:`agents.policy.GNSPolicy`'s heads (MLPs with one hidden layer of 32,
tanh mean, fixed std, actor/critic LRs) and :class:`agents.ppo.GNSPPO` (Eq. 3 reward
spreading), so entries differ only in the state representation (the features extractor) and
in how often the env validates (reward density):

=========  ==========  =========================================================  ==========
key        name        state                                                      val_prob
=========  ==========  =========================================================  ==========
``gns``    GNS         hierarchical GCN over the network's graph (§4.1)           env's (0.2)
``gat``    GNS-GAT     the same encoder with GAT layers (App. E, Table 14)        env's
``frs``    FRS         GNS, reward at every decision (§5.6)                       1
``srls``   SRLS        last layer's statistics only (Xu et al., 2019; §5.1)       1
``css``    CSS         all node features concatenated, no graph encoder (§5.6)    env's
=========  ==========  =========================================================  ==========

Train one with :func:`agents.training.train_agent` or ``scripts/train_gns.py --scheduler KEY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.extractor import GNSExtractor
from agents.state_extractors import ConcatenatedStateExtractor, LastLayerExtractor


@dataclass(frozen=True)
class LearnedScheduler:
    """One learned scheduler.

    :param name: display name (tables, logs).
    :param description: one line on what it is.
    :param policy_kwargs: passed to :class:`agents.policy.GNSPolicy` through
        :func:`agents.ppo.make_gns_ppo` (``features_extractor_class``, ``features_extractor_kwargs``).
    :param train_env_kwargs: env kwargs the scheduler is trained with; they override the env's
        defaults and may not be contradicted by the user's (``val_prob=1`` for FRS and SRLS).
    """

    name: str
    description: str
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    train_env_kwargs: dict[str, Any] = field(default_factory=dict)


LEARNED_SCHEDULERS: dict[str, LearnedScheduler] = {
    "gns": LearnedScheduler(
        name="GNS",
        description="the paper's scheduler: hierarchical GCN over the network's graph, reward validated with probability p",
        policy_kwargs={"features_extractor_class": GNSExtractor},
    ),
    "gat": LearnedScheduler(
        name="GNS-GAT",
        description="GNS with graph attention (GAT) layers instead of GCN (App. E, Table 14)",
        policy_kwargs={"features_extractor_class": GNSExtractor, "features_extractor_kwargs": {"conv": "gat"}},
    ),
    "frs": LearnedScheduler(
        name="FRS",
        description="full-reward scheduler: GNS trained with a reward at every decision (val_prob=1, §5.6)",
        policy_kwargs={"features_extractor_class": GNSExtractor},
        train_env_kwargs={"val_prob": 1.0},
    ),
    "srls": LearnedScheduler(
        name="SRLS",
        description="Xu et al. (2019): state = the last layer's statistics only, validated at every decision (val_prob=1)",
        policy_kwargs={"features_extractor_class": LastLayerExtractor},
        train_env_kwargs={"val_prob": 1.0},
    ),
    "css": LearnedScheduler(
        name="CSS",
        description="concatenated-state scheduler: all node features in one vector, no graph encoder (§5.6); does not transfer across networks",
        policy_kwargs={"features_extractor_class": ConcatenatedStateExtractor},
    ),
}
