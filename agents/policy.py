"""The GNS actor-critic policy (paper Eq. 4, §5.1, App. D) for Stable-Baselines3's PPO.

- The hierarchical GCN (:class:`agents.extractor.GNSExtractor`) is shared by actor and critic.
- Actor and critic heads are MLPs with one hidden layer of 32 units.
- The action mean is ``tanh(m_f(h))`` and the standard deviation is fixed (not learned). The
  env multiplies the action by its ``action_scale`` (0.1), so this is exactly the paper's
  ``mu = 0.1 * tanh(m_f(h))``, ``a ~ N(mu, sigma^2)`` in LR-factor units.
- Separate Adam learning rates: ``actor_lr`` (paper 0.001) for the encoder and the policy head,
  ``critic_lr`` (paper 0.005) for the value head. The paper does not say which rate the shared
  encoder uses; we give it the actor's, the smaller one.
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn as nn
from stable_baselines3.common.policies import MultiInputActorCriticPolicy

from agents.extractor import GNSExtractor


class GNSPolicy(MultiInputActorCriticPolicy):
    """:class:`MultiInputActorCriticPolicy` with the GNS encoder, a tanh mean and a fixed std.

    :param action_std: fixed standard deviation of the Gaussian policy in action units
        (0.5 = 0.05 in LR-factor units with the env's ``action_scale=0.1``).
    :param critic_lr_ratio: critic LR / actor LR (paper: 0.005 / 0.001 = 5).
    Other arguments are :class:`MultiInputActorCriticPolicy`'s.
    """

    def __init__(
        self,
        *args: Any,
        action_std: float = 0.5,
        critic_lr_ratio: float = 5.0,
        net_arch: Any = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        features_extractor_class: type = GNSExtractor,
        **kwargs: Any,
    ) -> None:
        if not action_std > 0:
            raise ValueError(f"action_std must be > 0, got {action_std}")
        self.critic_lr_ratio = critic_lr_ratio
        super().__init__(
            *args,
            net_arch=net_arch if net_arch is not None else dict(pi=[32], vf=[32]),
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            log_std_init=math.log(action_std),
            **kwargs,
        )

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Sequential(self.action_net, nn.Tanh())
        self.log_std.requires_grad_(False)
        critic = list(self.mlp_extractor.value_net.parameters()) + list(self.value_net.parameters())
        if not self.share_features_extractor:
            critic += list(self.vf_features_extractor.parameters())
        critic_ids = {id(p) for p in critic}
        actor = [p for p in self.parameters() if p.requires_grad and id(p) not in critic_ids]
        base_lr = lr_schedule(1)
        self.optimizer = self.optimizer_class(
            [
                {"params": actor, "lr": base_lr, "lr_ratio": 1.0},
                {"params": critic, "lr": base_lr * self.critic_lr_ratio, "lr_ratio": self.critic_lr_ratio},
            ],
            lr=base_lr,
            **self.optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(action_std=math.exp(float(self.log_std.detach()[0])), critic_lr_ratio=self.critic_lr_ratio)
        data.pop("log_std_init", None)
        return data
