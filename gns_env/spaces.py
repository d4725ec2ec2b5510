"""The fixed-shape observation: a padded graph in a ``gymnasium.spaces.Dict``.

Stable-Baselines3 accepts Box/Dict spaces but not ``gymnasium.spaces.Graph``, so the graph is
padded to ``max_nodes`` nodes and ``max_edges`` edges. Every key is a float32 ``Box`` (SB3
casts everything to float32 anyway; indices stay exact below 2**24):

=============  ========================  =====================================================
key            shape                     content
=============  ========================  =====================================================
``x``          (max_nodes, F)            node features (:data:`NODE_FEATURE_NAMES`), 0 past N
``node_mask``  (max_nodes,)              1 for the N real nodes (always the first N rows)
``edge_index`` (2, max_edges)            source / destination node index, 0 past E
``edge_mask``  (max_edges,)              1 for the E real edges (the first E columns)
``block``      (max_nodes,)              block id: 0 input, 1..M repeated blocks, M+1 output
``globals``    (G,)                      :data:`GLOBAL_FEATURE_NAMES`
=============  ========================  =====================================================
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from gymnasium import spaces

from gns_env.graph.builder import ModelGraph
from gns_env.graph.features import NODE_FEATURE_NAMES, log_lr

GLOBAL_FEATURE_NAMES = ("log10_lr", "log1p_loss", "progress")
NUM_NODE_FEATURES = len(NODE_FEATURE_NAMES)
NUM_GLOBAL_FEATURES = len(GLOBAL_FEATURE_NAMES)
_FEATURE_BOUND = 1e4


def global_features(lr: float, mean_loss: float, progress: float) -> np.ndarray:
    """The ``globals`` vector (3,): log10 LR, log(1 + mean training loss of the last K steps)
    (0 when that loss is not finite) and progress t/T."""
    loss = math.log1p(mean_loss) if math.isfinite(mean_loss) else 0.0
    return np.array([log_lr(lr), loss, progress])


def graph_observation_space(max_nodes: int, max_edges: int) -> spaces.Dict:
    """The observation space shared by every env with the same ``max_nodes``/``max_edges``."""
    f32 = np.float32
    return spaces.Dict(
        {
            "x": spaces.Box(-_FEATURE_BOUND, _FEATURE_BOUND, (max_nodes, NUM_NODE_FEATURES), f32),
            "node_mask": spaces.Box(0, 1, (max_nodes,), f32),
            "edge_index": spaces.Box(0, max_nodes - 1, (2, max_edges), f32),
            "edge_mask": spaces.Box(0, 1, (max_edges,), f32),
            "block": spaces.Box(0, max_nodes + 1, (max_nodes,), f32),
            "globals": spaces.Box(-_FEATURE_BOUND, _FEATURE_BOUND, (NUM_GLOBAL_FEATURES,), f32),
        }
    )


class GraphObservationEncoder:
    """Pads one graph into the Dict observation; the static parts are built once.

    :param graph: the network's static graph.
    :param max_nodes: padded node count; must be >= ``graph.num_nodes``.
    :param max_edges: padded edge count; must be >= ``graph.num_edges``.
    """

    def __init__(self, graph: ModelGraph, max_nodes: int, max_edges: int) -> None:
        if graph.num_nodes > max_nodes:
            raise ValueError(
                f"max_nodes={max_nodes} is smaller than the model's graph ({graph.num_nodes} nodes); "
                f"pass max_nodes>={graph.num_nodes}"
            )
        if graph.num_edges > max_edges:
            raise ValueError(
                f"max_edges={max_edges} is smaller than the model's graph ({graph.num_edges} edges); "
                f"pass max_edges>={graph.num_edges}"
            )
        self.num_nodes = graph.num_nodes
        self.space = graph_observation_space(max_nodes, max_edges)
        self._node_mask = np.zeros(max_nodes, np.float32)
        self._node_mask[: graph.num_nodes] = 1
        self._edge_index = np.zeros((2, max_edges), np.float32)
        self._edge_index[:, : graph.num_edges] = graph.edge_index().numpy()
        self._edge_mask = np.zeros(max_edges, np.float32)
        self._edge_mask[: graph.num_edges] = 1
        self._block = np.zeros(max_nodes, np.float32)
        self._block[: graph.num_nodes] = graph.blocks
        self._max_nodes = max_nodes

    def encode(self, node_features: torch.Tensor, global_features: np.ndarray) -> dict[str, np.ndarray]:
        """``node_features`` (N, F) and ``global_features`` (G,) -> the padded observation."""
        x = np.zeros((self._max_nodes, NUM_NODE_FEATURES), np.float32)
        x[: self.num_nodes] = node_features.numpy()
        bounded = np.clip(np.nan_to_num(global_features, nan=0.0), -_FEATURE_BOUND, _FEATURE_BOUND)
        return {
            "x": x,
            "node_mask": self._node_mask.copy(),
            "edge_index": self._edge_index.copy(),
            "edge_mask": self._edge_mask.copy(),
            "block": self._block.copy(),
            "globals": bounded.astype(np.float32),
        }


def to_pyg(observation: dict):
    """One (unbatched) observation -> ``torch_geometric.data.Data`` with only the real nodes.

    Fields: ``x`` (N, F), ``edge_index`` (2, E) int64, ``block`` (N,) int64, ``globals`` (1, G).
    """
    with warnings.catch_warnings():  # PyG calls the deprecated torch.jit.script at import time
        warnings.simplefilter("ignore", FutureWarning)
        from torch_geometric.data import Data

    obs = {key: torch.as_tensor(np.asarray(value)) for key, value in observation.items()}
    num_nodes = int(obs["node_mask"].sum().item())
    num_edges = int(obs["edge_mask"].sum().item())
    return Data(
        x=obs["x"][:num_nodes].float(),
        edge_index=obs["edge_index"][:, :num_edges].long(),
        block=obs["block"][:num_nodes].long(),
        globals=obs["globals"].float().unsqueeze(0),
        num_nodes=num_nodes,
    )
