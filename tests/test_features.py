import numpy as np
import pytest
import torch
import torch.nn as nn

from gns_env.graph import build_graph
from gns_env.graph.features import NODE_FEATURE_NAMES, NodeFeaturizer, positive_log, signed_log
from gns_env.spaces import GraphObservationEncoder, to_pyg


@pytest.fixture
def trained_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.LayerNorm(4), nn.Linear(4, 2, bias=False))
    graph = build_graph(model, torch.randn(5, 3))
    nn.functional.cross_entropy(model(torch.randn(5, 3)), torch.tensor([0, 1, 0, 1, 1])).backward()
    return model, graph


def test_node_features_are_the_transformed_statistics(trained_mlp):
    model, graph = trained_mlp
    features = NodeFeaturizer(graph, model).compute(lr=1e-3, loss=0.5)
    assert features.shape == (3, len(NODE_FEATURE_NAMES)) and features.dtype == torch.float32
    w, b = model[0].weight, model[0].bias
    gw, gb = w.grad.abs(), b.grad.abs()
    w, b = w.detach(), b.detach()
    expected = [
        signed_log(w.mean()), positive_log(w.var(correction=0)), signed_log(b.mean()), positive_log(b.var(correction=0)),
        positive_log(gw.mean()), positive_log(gw.var(correction=0)),
        positive_log(gb.mean()), positive_log(gb.var(correction=0)), 1.0, -3.0, np.log1p(0.5),
    ]  # fmt: skip
    torch.testing.assert_close(features[0], torch.tensor([float(e) for e in expected]))
    assert features[2, NODE_FEATURE_NAMES.index("has_bias")] == 0  # the last Linear has no bias
    assert features[2, 2] == 0 and features[2, 3] == pytest.approx(-2.0)


def test_non_finite_parameters_give_finite_features_and_a_flag(trained_mlp):
    model, graph = trained_mlp
    featurizer = NodeFeaturizer(graph, model)
    featurizer.compute(1e-3, 0.5)
    assert featurizer.last_finite
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
        model[3].weight[0, 0] = float("inf")
    features = featurizer.compute(1e-3, float("nan"))
    assert torch.isfinite(features).all() and not featurizer.last_finite


def test_transforms_are_monotone():
    x = torch.tensor([-1.0, -1e-4, 0.0, 1e-6, 1e-2, 10.0])
    assert torch.all(torch.diff(signed_log(x)) > 0)
    assert torch.all(torch.diff(positive_log(x[2:])) > 0)


def test_padding_round_trip_through_to_pyg(trained_mlp):
    model, graph = trained_mlp
    encoder = GraphObservationEncoder(graph, max_nodes=8, max_edges=6)
    features = NodeFeaturizer(graph, model).compute(1e-2, 1.0)
    obs = encoder.encode(features, np.array([-2.0, 0.7, 0.25]))
    assert encoder.space.contains(obs)
    data = to_pyg(obs)
    torch.testing.assert_close(data.x, features)
    assert data.edge_index.tolist() == graph.edge_index().tolist()
    assert data.block.tolist() == graph.blocks and data.num_nodes == graph.num_nodes
    torch.testing.assert_close(data.globals, torch.tensor([[-2.0, 0.7, 0.25]]))


def test_encoder_rejects_graphs_larger_than_the_padding(trained_mlp):
    _, graph = trained_mlp
    with pytest.raises(ValueError, match="max_nodes=2 is smaller than the model's graph \\(3 nodes\\)"):
        GraphObservationEncoder(graph, max_nodes=2, max_edges=8)
