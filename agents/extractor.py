"""Hierarchical graph encoder of GNS as a Stable-Baselines3 features extractor (paper §4.1, §5.1).

One shared encoder — 2 GCN layers of 64 units, each followed by batch norm and ReLU — runs
block by block, from the input block (id 0) to the output block (id M+1):

1. the nodes of block ``i`` are encoded with the edges inside block ``i`` (Eq. 1); each node's
   input is its raw features concatenated with the summary of the previous block (zeros for
   block 0), which is how the summary "is used as the input node feature of the next block";
2. the block summary ``h_Gi`` is the mean of its node embeddings;
3. the graph embedding ``h_G`` is the mean of all node embeddings.

Everything is a mean or a shared layer, so the output does not depend on the number of nodes,
blocks or on the padding (``max_nodes``/``max_edges``): one policy serves ResNet, VGG and
RoBERTa graphs.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import torch
import torch.nn as nn
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

with warnings.catch_warnings():  # PyG calls the deprecated torch.jit.script at import time
    warnings.simplefilter("ignore", FutureWarning)
    from torch_geometric.nn import BatchNorm, GATConv, GCNConv, global_mean_pool
    from torch_geometric.utils import subgraph

_CONVS = {"gcn": lambda i, o: GCNConv(i, o), "gat": lambda i, o: GATConv(i, o, heads=1)}


class PaddedGraphBatch:
    """The real nodes and edges of a batch of padded observations, in PyG's flat layout.

    :ivar x: ``(n, F)`` features of the real nodes of all graphs.
    :ivar batch: ``(n,)`` graph index of each node.
    :ivar block: ``(n,)`` block id of each node.
    :ivar edge_index: ``(2, e)`` edges, renumbered into ``x``'s rows.
    :ivar num_graphs: B.
    """

    def __init__(self, observations: dict[str, torch.Tensor]) -> None:
        node_mask = observations["node_mask"] > 0.5  # (B, max_nodes)
        edge_mask = observations["edge_mask"] > 0.5  # (B, max_edges)
        self.num_graphs = node_mask.shape[0]
        counts = node_mask.sum(dim=1)
        offsets = torch.cumsum(counts, 0) - counts  # first row of each graph in x
        self.x = observations["x"][node_mask]
        self.block = observations["block"][node_mask].long()
        graph_ids = torch.arange(self.num_graphs, device=node_mask.device)
        self.batch = graph_ids.repeat_interleave(counts)
        edges = observations["edge_index"].long() + offsets.view(-1, 1, 1)  # (B, 2, max_edges)
        self.edge_index = edges.permute(1, 0, 2)[:, edge_mask]  # (2, e)


class GNSExtractor(BaseFeaturesExtractor):
    """Hierarchical GCN over the padded graph observation of :mod:`gns_env.spaces`.

    Input: the Dict observation batched by SB3 (``x`` (B, max_nodes, F), masks, ``edge_index``
    (B, 2, max_edges), ``block`` (B, max_nodes), ``globals`` (B, G)); output ``(B, features_dim)``
    with ``features_dim = hidden_dim`` (+ G when ``use_globals``).

    :param observation_space: the env's Dict observation space.
    :param hidden_dim: node embedding size (paper: 64).
    :param num_layers: graph convolutions per block (paper: 2).
    :param conv: ``"gcn"`` (paper) or ``"gat"`` (the GAT variant of Table 14).
    :param use_globals: append the ``globals`` vector (log LR, loss, progress t/T) to the graph
        embedding. Off by default: the paper's state is the graph alone (LR and loss are node
        features already).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        hidden_dim: int = 64,
        num_layers: int = 2,
        conv: str = "gcn",
        use_globals: bool = False,
    ) -> None:
        if conv not in _CONVS:
            raise ValueError(f"conv must be one of {sorted(_CONVS)}, got {conv!r}")
        num_globals = observation_space["globals"].shape[0]
        super().__init__(observation_space, hidden_dim + (num_globals if use_globals else 0))
        num_features = observation_space["x"].shape[1]
        self.hidden_dim = hidden_dim
        self.use_globals = use_globals
        dims = [num_features + hidden_dim] + [hidden_dim] * num_layers
        self.convs = nn.ModuleList(_CONVS[conv](i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(BatchNorm(hidden_dim, allow_single_element=True) for _ in range(num_layers))

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        graphs = PaddedGraphBatch(observations)
        num_graphs = graphs.num_graphs
        node_embeddings = graphs.x.new_zeros((graphs.x.shape[0], self.hidden_dim))
        summary = graphs.x.new_zeros((num_graphs, self.hidden_dim))  # previous block's h_G per graph
        max_block = int(graphs.block.max().item()) if graphs.block.numel() else -1
        for block_id in range(max_block + 1):
            in_block = graphs.block == block_id
            if not bool(in_block.any()):
                continue
            edge_index, _ = subgraph(in_block, graphs.edge_index, relabel_nodes=True, num_nodes=len(in_block))
            batch = graphs.batch[in_block]
            h = torch.cat([graphs.x[in_block], summary[batch]], dim=1)
            for conv, norm in zip(self.convs, self.norms):
                h = torch.relu(norm(conv(h, edge_index)))
            node_embeddings[in_block] = h
            block_mean = global_mean_pool(h, batch, size=num_graphs)
            present = torch.bincount(batch, minlength=num_graphs) > 0
            summary = torch.where(present.unsqueeze(1), block_mean, summary)  # graphs without this block keep theirs
        features = global_mean_pool(node_embeddings, graphs.batch, size=num_graphs)  # h_G
        if self.use_globals:
            features = torch.cat([features, observations["globals"]], dim=1)
        return features
