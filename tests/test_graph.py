import pytest
import torch
import torch.nn as nn
import torchvision
from transformers import RobertaConfig, RobertaForSequenceClassification

from gns_env.graph import build_graph


def owners_of_parameters(model):
    return [name for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def edge_names(graph):
    return {(graph.node_names[u], graph.node_names[v]) for u, v in graph.edges}


def assert_topological(graph):
    # nodes come in forward order, so every edge must point forward: the graph is a DAG
    assert all(u < v for u, v in graph.edges)


@pytest.fixture(scope="module")
def resnet18_graph():
    model = torchvision.models.resnet18(num_classes=10)
    return model, build_graph(model, torch.randn(1, 3, 32, 32))


def test_resnet18_nodes_are_the_parameter_owning_modules(resnet18_graph):
    model, graph = resnet18_graph
    assert sorted(graph.node_names) == sorted(owners_of_parameters(model))
    assert graph.num_nodes == 41  # 20 conv + 20 batch norm + fc
    assert graph.node_names[0] == "conv1" and graph.node_names[-1] == "fc"
    assert_topological(graph)


def test_resnet18_edges_follow_the_computation_with_skips(resnet18_graph):
    _, graph = resnet18_graph
    edges = edge_names(graph)
    assert ("conv1", "bn1") in edges
    assert ("layer1.0.conv1", "layer1.0.bn1") in edges
    assert ("layer1.0.bn2", "layer1.1.conv1") in edges  # main path into the next block
    assert ("bn1", "layer1.1.conv1") in edges  # identity skip around layer1.0
    assert ("layer1.1.bn2", "layer2.0.downsample.0") in edges  # projection shortcut input
    assert ("layer2.0.downsample.1", "layer2.1.conv1") in edges  # projection shortcut output
    assert ("layer4.1.bn2", "fc") in edges
    assert ("conv1", "layer1.0.conv1") not in edges  # the batch norm sits between them
    assert graph.num_edges == 58
    # every node but the first has an input, every node but the last an output
    assert {v for _, v in graph.edges} == set(range(1, graph.num_nodes))
    assert {u for u, _ in graph.edges} == set(range(graph.num_nodes - 1))


def test_resnet18_blocks(resnet18_graph):
    _, graph = resnet18_graph
    assert graph.block_names == ["input", "layer1.0", "layer1.1", "layer2.0", "layer2.1",
                                 "layer3.0", "layer3.1", "layer4.0", "layer4.1", "output"]  # fmt: skip
    block_of = dict(zip(graph.node_names, graph.blocks))
    assert block_of["conv1"] == block_of["bn1"] == 0
    assert block_of["layer2.0.downsample.1"] == block_of["layer2.0.conv1"] == 3
    assert block_of["fc"] == 9
    assert graph.blocks == sorted(graph.blocks)


@pytest.fixture(scope="module")
def roberta_graph():
    config = RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=24, num_labels=2)  # fmt: skip
    model = RobertaForSequenceClassification(config)
    inputs = {"input_ids": torch.randint(3, 50, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    return model, build_graph(model, inputs)


def test_roberta_nodes_and_blocks(roberta_graph):
    model, graph = roberta_graph
    assert sorted(graph.node_names) == sorted(owners_of_parameters(model))
    assert graph.num_nodes == 4 + 3 * 8 + 2  # embeddings (3 + LayerNorm), 8 per layer, head
    assert graph.block_names == ["input", "roberta.encoder.layer.0", "roberta.encoder.layer.1",
                                 "roberta.encoder.layer.2", "output"]  # fmt: skip
    for name, block in zip(graph.node_names, graph.blocks):
        if name.startswith("roberta.embeddings"):
            assert block == 0
        elif name.startswith("classifier"):
            assert block == 4
        else:
            assert block == int(name.split(".")[3]) + 1
    assert_topological(graph)


def test_roberta_qkv_fan_out_and_layernorm_residuals(roberta_graph):
    _, graph = roberta_graph
    edges = edge_names(graph)
    for layer in range(3):
        p = f"roberta.encoder.layer.{layer}"
        previous = "roberta.embeddings.LayerNorm" if layer == 0 else f"roberta.encoder.layer.{layer - 1}.output.LayerNorm"
        for proj in ("query", "key", "value"):
            assert (previous, f"{p}.attention.self.{proj}") in edges  # fan-out
            assert (f"{p}.attention.self.{proj}", f"{p}.attention.output.dense") in edges  # fan-in
        assert (previous, f"{p}.attention.output.LayerNorm") in edges  # residual around attention
        assert (f"{p}.attention.output.LayerNorm", f"{p}.output.LayerNorm") in edges  # residual around FFN
        assert (f"{p}.intermediate.dense", f"{p}.output.dense") in edges
    for table in ("word", "position", "token_type"):
        assert (f"roberta.embeddings.{table}_embeddings", "roberta.embeddings.LayerNorm") in edges


def test_stages_between_pooling_layers_when_nothing_repeats():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    )  # fmt: skip
    graph = build_graph(model, torch.randn(1, 1, 16, 16))
    assert graph.node_names == ["0", "1", "4", "8"]
    assert graph.edges == [(0, 1), (1, 2), (2, 3)]
    assert graph.blocks == [1, 1, 2, 3]  # VGG-like: stages are the repeated blocks, the head is the output
    assert graph.block_names == ["input", "0", "4", "output"]


def test_mlp_gets_input_body_output_blocks():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    graph = build_graph(model, torch.randn(2, 4))
    assert graph.edges == [(0, 1), (1, 2)]
    assert graph.blocks == [0, 1, 2]


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.unused = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4))  # owned directly by the root module
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.frozen(self.body(x)) * self.scale)


def test_only_trainable_modules_that_run_become_nodes():
    graph = build_graph(TwoHeads(), torch.randn(3, 4))
    assert graph.node_names == ["body", "", "head"]  # "" = the root, owner of `scale`
    assert graph.edges == [(0, 1), (1, 2)]  # body -> (frozen, parameter-free) -> scale -> head


def test_build_graph_leaves_the_model_untouched():
    model = torchvision.models.resnet18(num_classes=10).train()
    before = model.bn1.running_mean.clone()
    build_graph(model, torch.randn(2, 3, 32, 32))
    assert model.training
    assert torch.equal(model.bn1.running_mean, before)
    assert all(p.grad is None for p in model.parameters())


def test_block_type_override_and_errors():
    model = torchvision.models.resnet18(num_classes=10)
    graph = build_graph(model, torch.randn(1, 3, 32, 32), block_type="Sequential")
    assert graph.block_names == ["input", "layer1", "layer2", "layer3", "layer4", "output"]
    with pytest.raises(ValueError, match="matches no module"):
        build_graph(model, torch.randn(1, 3, 32, 32), block_type="Bottleneck")
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_graph(nn.ReLU(), torch.randn(2))
