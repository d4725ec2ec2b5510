"""Property-based tests (hypothesis) for the parts with many inputs: the graph builder on random
MLP / CNN / residual architectures, and the padded observation encoder."""

import numpy as np
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from gns_env import ModelGraph, build_graph, to_pyg
from gns_env.graph.features import NODE_FEATURE_NAMES
from gns_env.spaces import GraphObservationEncoder


class Residual(nn.Module):
    """``x + relu(norm(conv(x)))``: a skip that starts wherever the block does."""

    def __init__(self, channels: int, norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels) if norm else nn.Identity()

    def forward(self, x):
        return x + torch.relu(self.norm(self.conv(x)))


@st.composite
def architectures(draw):
    """A random ``nn.Sequential`` and an example input for it."""
    if draw(st.booleans()):  # MLP
        width = draw(st.integers(1, 6))
        layers, example = [], torch.randn(2, width)
        for new_width in draw(st.lists(st.integers(1, 6), min_size=1, max_size=5)):
            layers.append(nn.Linear(width, new_width, bias=draw(st.booleans())))
            layers += draw(st.sampled_from([[], [nn.ReLU()], [nn.LayerNorm(new_width)]]))
            width = new_width
        return nn.Sequential(*layers), example
    channels, size = draw(st.integers(1, 3)), 8
    layers, example = [], torch.randn(2, channels, size, size)
    for kind in draw(st.lists(st.sampled_from(["conv", "norm", "residual", "pool"]), min_size=1, max_size=6)):
        if kind == "conv":
            new_channels = draw(st.integers(1, 4))
            layers += [nn.Conv2d(channels, new_channels, 3, padding=1, bias=draw(st.booleans())), nn.ReLU()]
            channels = new_channels
        elif kind == "norm":
            layers.append(nn.BatchNorm2d(channels))
        elif kind == "residual":
            layers.append(Residual(channels, norm=draw(st.booleans())))
        elif size > 1:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 3)]
    return nn.Sequential(*layers), example


def _reachable(start: int, edges: list[tuple[int, int]], forward: bool = True) -> set[int]:
    neighbours: dict[int, list[int]] = {}
    for u, v in edges:
        a, b = (u, v) if forward else (v, u)
        neighbours.setdefault(a, []).append(b)
    seen, stack = {start}, [start]
    while stack:
        for n in neighbours.get(stack.pop(), []):
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return seen


@settings(max_examples=100, deadline=None)
@given(architectures())
def test_graph_of_any_architecture_is_a_connected_dag_of_parameter_owners(architecture):
    model, example = architecture
    graph = build_graph(model, example)
    owners = {name for name, module in model.named_modules() if any(True for _ in module.parameters(recurse=False))}
    assert set(graph.node_names) == owners and len(graph.node_names) == len(owners)
    n = graph.num_nodes
    assert all(0 <= u < v < n for u, v in graph.edges), "edges run forward in execution order, so no cycle"
    assert len(set(graph.edges)) == len(graph.edges)
    assert _reachable(0, graph.edges) == set(range(n)), "every node is reachable from the first"
    assert _reachable(n - 1, graph.edges, forward=False) == set(range(n)), "every node reaches the output"
    assert len(graph.blocks) == n and set(graph.blocks) <= set(range(len(graph.block_names)))


@st.composite
def padded_graphs(draw):
    """A random DAG as a ModelGraph, its node features and a padding at least its size."""
    n = draw(st.integers(1, 12))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=20)) if pairs else []
    # block ids as a real graph has them: 0 .. M+1 with M <= N repeated blocks
    blocks = sorted(draw(st.lists(st.integers(0, min(4, n + 1)), min_size=n, max_size=n)))
    graph = ModelGraph([f"m{i}" for i in range(n)], edges, blocks, [f"b{i}" for i in range(max(blocks) + 1)])
    features = torch.tensor(draw(st.lists(st.floats(-5, 5, width=32), min_size=n * len(NODE_FEATURE_NAMES),
                                          max_size=n * len(NODE_FEATURE_NAMES)))).view(n, -1)  # fmt: skip
    return graph, features, n + draw(st.integers(0, 8)), len(edges) + draw(st.integers(0, 8))


@settings(max_examples=60, deadline=None)
@given(padded_graphs(), st.lists(st.floats(-3, 3, width=32), min_size=3, max_size=3))
def test_padding_round_trips_through_to_pyg(padded, global_features):
    graph, features, max_nodes, max_edges = padded
    encoder = GraphObservationEncoder(graph, max_nodes, max_edges)
    observation = encoder.encode(features, np.array(global_features))
    assert encoder.space.contains(observation)
    data = to_pyg(observation)
    torch.testing.assert_close(data.x, features)
    assert data.edge_index.t().tolist() == [list(e) for e in graph.edges]
    assert data.block.tolist() == graph.blocks
    np.testing.assert_allclose(data.globals.numpy()[0], global_features)
    assert not observation["x"][graph.num_nodes :].any() and not observation["edge_mask"][graph.num_edges :].any()
