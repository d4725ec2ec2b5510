"""State representations of the learned baselines, as SB3 features extractors over the same
Dict observation as :class:`agents.extractor.GNSExtractor` (:mod:`gns_env.spaces`).

- :class:`LastLayerExtractor` — SRLS (Xu et al., 2019; paper §5.1): the state is the
  statistics of the network's last layer only.
- :class:`ConcatenatedStateExtractor` — CSS (paper §5.6, App. E "SRLS + ALS"): the features of
  all nodes concatenated into one vector, no graph encoder.

Both feed GNSPolicy's heads unchanged (MLPs with one hidden layer of 32, tanh mean, fixed std),
so a comparison with GNS differs only in the state representation.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor


class LastLayerExtractor(BaseFeaturesExtractor):
    """SRLS state: the feature row of the network's output layer.

    Nodes are in forward (execution) order (:func:`gns_env.graph.builder.build_graph`) and the
    real nodes are the first N rows, so the last real node (row ``N - 1``) is the last layer to
    run: ``fc`` of a ResNet, ``classifier.out_proj`` of a RoBERTa classifier, ``classifier`` of
    a BERT/MiniLM one — always in the output block. Its row holds that layer's weight, bias and
    gradient statistics plus the current LR and training loss (every node carries those), i.e.
    the state of Xu et al. (2019).

    Input: ``x`` (B, max_nodes, F) and ``node_mask`` (B, max_nodes) (other keys unused).
    Output: ``(B, F)``, ``x[b, N_b - 1]``; ``features_dim = F``. It does not depend on the
    padding, so like GNS it serves any network (with very little of its state).
    """

    def __init__(self, observation_space: gym.spaces.Dict) -> None:
        super().__init__(observation_space, observation_space["x"].shape[1])

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        x = observations["x"]  # (B, max_nodes, F)
        counts = (observations["node_mask"] > 0.5).sum(dim=1)  # (B,) real nodes N_b
        last = (counts - 1).clamp_min(0).long()  # (B,)
        return x[torch.arange(x.shape[0], device=x.device), last]  # (B, F)


class ConcatenatedStateExtractor(BaseFeaturesExtractor):
    """CSS state: every node's features concatenated, padded rows zeroed.

    Input: ``x`` (B, max_nodes, F) and ``node_mask`` (B, max_nodes) (other keys unused).
    Output: ``(x * node_mask[..., None]).flatten(1)``, shape ``(B, max_nodes * F)``;
    ``features_dim = max_nodes * F``, and entries past ``N_b * F`` are 0.

    Unlike GNS, the input layout depends on the node order and count (row ``i`` is whichever
    layer comes ``i``-th in that network) and the size on ``max_nodes``: a CSS policy does not
    transfer across networks or paddings (paper §5.6: it "cannot be applied to different target
    models").
    """

    def __init__(self, observation_space: gym.spaces.Dict) -> None:
        max_nodes, num_features = observation_space["x"].shape
        super().__init__(observation_space, max_nodes * num_features)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = (observations["node_mask"] > 0.5).to(observations["x"].dtype)  # (B, max_nodes)
        return (observations["x"] * mask.unsqueeze(-1)).flatten(1)  # (B, max_nodes * F)
