"""Turn any ``nn.Module`` into the paper's operator graph (§4.1, Fig. 1, Fig. 4).

Nodes are the modules that directly own trainable parameters and run in the forward pass.
Edges follow the data flow of one real forward pass: the autograd graph of the output is walked
from every parameter's consumer back to the nearest consumers of other modules' parameters,
through any chain of parameter-free operations (activations, pooling, residual additions,
attention products). So residual skips, Q/K/V fan-out and LayerNorm residuals appear without
knowing the architecture. Nodes are then grouped into an input block, repeated blocks and an
output block (§4.1, "hierarchical GCN").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_POOLING = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip
# Autograd functions that only reshape, cast or view a tensor: applied to a parameter alone
# (``weight.t()`` inside ``Linear``, a bf16 cast under autocast) they are still "the parameter".
_VIEW_FUNCTIONS = {
    "TBackward", "TransposeBackward", "PermuteBackward", "ViewBackward", "UnsafeViewBackward",
    "ReshapeAliasBackward", "ExpandBackward", "UnsqueezeBackward", "SqueezeBackward",
    "ToCopyBackward", "SliceBackward", "SelectBackward", "AliasBackward", "CloneBackward",
    "SplitBackward", "SplitWithSizesBackward", "UnbindBackward", "UnsafeSplitBackward",
}  # fmt: skip


@dataclass(frozen=True)
class ModelGraph:
    """The static structure of a network.

    :param node_names: qualified module name of each node, in forward (execution) order.
    :param edges: ``(source, destination)`` node-index pairs along the computation.
    :param blocks: block id per node: 0 = input block, 1..M = repeated blocks, M+1 = output block.
    :param block_names: name of each block id (``"input"``, module names of the repeated blocks,
        ``"output"``); ``len(block_names) == M + 2``.
    """

    node_names: list[str]
    edges: list[tuple[int, int]]
    blocks: list[int]
    block_names: list[str]

    @property
    def num_nodes(self) -> int:
        return len(self.node_names)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def num_repeated_blocks(self) -> int:
        """M, the number of repeated blocks."""
        return len(self.block_names) - 2

    def edge_index(self) -> torch.Tensor:
        """Edges as a ``(2, E)`` int64 tensor (PyG convention: row 0 = source)."""
        if not self.edges:
            return torch.zeros((2, 0), dtype=torch.long)
        return torch.tensor(self.edges, dtype=torch.long).t().contiguous()


def build_graph(
    model: nn.Module,
    example_input: torch.Tensor | tuple | Mapping,
    block_type: type[nn.Module] | str | None = None,
) -> ModelGraph:
    """Build the operator graph of ``model`` from one forward pass on ``example_input``.

    The forward pass runs in eval mode (no batch-norm statistics change) and the model's
    training flag is restored. ``example_input`` is passed as ``model(x)``, ``model(*x)`` for a
    tuple, or ``model(**x)`` for a mapping (Hugging Face models).

    :param block_type: the module class (or class name) of the repeated block; by default the
        non-container class with at least two disjoint instances that covers the most nodes
        (ResNet ``BasicBlock``, ``RobertaLayer``, ...). Without one, a ``Sequential`` that holds
        pooling layers is cut into stages at them (VGG); otherwise the middle nodes form one block.
    """
    owners = _parameter_owners(model)
    if not owners:
        raise ValueError(f"{type(model).__name__} has no trainable parameters: there is no graph to build")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            output = _call(model, example_input)
    finally:
        model.train(was_training)
    roots = [t.grad_fn for t in _tensors(output) if t.grad_fn is not None]
    if not roots:
        raise ValueError("the forward pass produced no tensor that depends on a trainable parameter")
    node_names, edges = _trace(roots, owners)
    blocks, block_names = _assign_blocks(model, node_names, block_type)
    return ModelGraph(node_names=node_names, edges=edges, blocks=blocks, block_names=block_names)


def _parameter_owners(model: nn.Module) -> dict[int, str]:
    """``id(parameter) -> name of the module that directly owns it`` (trainable ones only)."""
    owners: dict[int, str] = {}
    for name, module in model.named_modules():
        for parameter in module.parameters(recurse=False):
            if parameter.requires_grad:
                owners.setdefault(id(parameter), name)
    return owners


def _call(model: nn.Module, example_input):
    if isinstance(example_input, Mapping):
        return model(**example_input)
    if isinstance(example_input, tuple):
        return model(*example_input)
    return model(example_input)


def _tensors(output) -> Iterator[torch.Tensor]:
    """Every tensor inside a (nested) model output: tensor, tuple/list, dict or HF ModelOutput."""
    if isinstance(output, torch.Tensor):
        yield output
    elif isinstance(output, Mapping):
        for value in output.values():
            yield from _tensors(value)
    elif isinstance(output, Iterable) and not isinstance(output, (str, bytes)):
        for value in output:
            yield from _tensors(value)


def _children(fn) -> list:
    return [child for child, _ in fn.next_functions if child is not None]


def _postorder(roots: list) -> list:
    """Autograd nodes reachable from ``roots``, every node after all of its inputs."""
    order, seen, stack = [], set(), [(root, False) for root in roots]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if fn in seen:
            continue
        seen.add(fn)
        stack.append((fn, True))
        stack.extend((child, False) for child in _children(fn) if child not in seen)
    return order


def _trace(roots: list, owners: dict[int, str]) -> tuple[list[str], list[tuple[int, int]]]:
    """Nodes (forward order) and edges from the autograd graph below ``roots``.

    Per autograd function, in post-order: ``param_of`` = the module whose parameter it is
    (``AccumulateGrad`` and view/cast chains on it, like the transpose of a Linear weight); ``ops_of`` = the
    modules whose parameters it consumes directly (the operator itself); ``upstream`` = the
    modules of the nearest operators below it through parameter-free functions.
    """
    param_of: dict = {}
    ops_of: dict = {}
    upstream: dict = {}
    first_seen: dict[str, int] = {}
    edges: set[tuple[str, str]] = set()
    for fn in _postorder(roots):
        children = _children(fn)
        variable = getattr(fn, "variable", None)
        if variable is not None:
            param_of[fn] = owners.get(id(variable))
            continue
        child_params = {param_of.get(child) for child in children if child in param_of}
        is_view = type(fn).__name__.rstrip("0123456789") in _VIEW_FUNCTIONS
        if is_view and children and all(child in param_of for child in children) and len(child_params) == 1:
            param_of[fn] = child_params.pop()  # a chain on one module's parameters (w.t(), expand)
            continue
        mine = {owner for owner in child_params if owner is not None}
        below = set().union(*(upstream[c] for c in children if c not in param_of)) if children else set()
        if mine:
            ops_of[fn] = mine
            upstream[fn] = mine
            edges.update((u, v) for u in below for v in mine if u != v)
            sequence = fn._sequence_nr()
            for name in mine:
                first_seen[name] = min(first_seen.get(name, sequence), sequence)
        else:
            upstream[fn] = below
    node_names = sorted(first_seen, key=first_seen.__getitem__)
    index = {name: i for i, name in enumerate(node_names)}
    return node_names, sorted((index[u], index[v]) for u, v in edges)


def _covered(prefix: str, node_names: list[str]) -> list[int]:
    return [i for i, name in enumerate(node_names) if prefix == "" or name == prefix or name.startswith(prefix + ".")]


def _repeated_instances(
    model: nn.Module, node_names: list[str], block_type: type[nn.Module] | str | None
) -> list[tuple[str, list[int]]]:
    """``(module name, node indices)`` of each repeated block, or ``[]`` when there is none."""
    by_class: dict[type, list[tuple[str, list[int]]]] = defaultdict(list)
    for name, module in model.named_modules():
        if not name:
            continue
        if block_type is None and type(module) in _CONTAINERS:
            continue
        if block_type is not None and not (
            type(module) is block_type or type(module).__name__ == block_type
        ):
            continue
        covered = _covered(name, node_names)
        if covered and (block_type is not None or len(covered) >= 2):
            by_class[type(module)].append((name, covered))
    best: list[tuple[str, list[int]]] = []
    for instances in by_class.values():
        instances = [  # drop instances nested inside another instance of the same class
            (name, cov) for name, cov in instances
            if not any(name.startswith(other + ".") for other, _ in instances)
        ]  # fmt: skip
        if len(instances) < 2 and block_type is None:
            continue
        key = (sum(len(cov) for _, cov in instances), len(instances))
        if not best or key > (sum(len(cov) for _, cov in best), len(best)):
            best = instances
    if block_type is not None and not best:
        raise ValueError(f"block_type={block_type!r} matches no module that owns graph nodes")
    if best or block_type is not None:
        return sorted(best, key=lambda item: min(item[1]))
    return _pooling_stages(model, node_names)


def _pooling_stages(model: nn.Module, node_names: list[str]) -> list[tuple[str, list[int]]]:
    """Stages of a ``Sequential``, each closed by a pooling layer (VGG ``features``)."""
    for name, module in model.named_modules():
        if type(module) is not nn.Sequential or not any(isinstance(m, _POOLING) for m in module):
            continue
        stages, current, start = [], [], None
        for child_name, child in module.named_children():
            qualified = f"{name}.{child_name}" if name else child_name
            current += _covered(qualified, node_names)
            start = start or qualified
            if isinstance(child, _POOLING):
                if current:
                    stages.append((start, current))
                current, start = [], None
        if len(stages) >= 2:  # nodes after the last pooling layer are the head, not a stage
            return stages
    return []


def _assign_blocks(
    model: nn.Module, node_names: list[str], block_type: type[nn.Module] | str | None
) -> tuple[list[int], list[str]]:
    n = len(node_names)
    instances = _repeated_instances(model, node_names, block_type)
    if not instances:  # no repeated structure: first node = input, last = output, rest = one block
        if n <= 2:
            return [0] + [1] * (n - 1), ["input", "output"]
        return [0] + [1] * (n - 2) + [2], ["input", "body", "output"]
    blocks = [-1] * n
    for block_id, (_, covered) in enumerate(instances, start=1):
        for i in covered:
            blocks[i] = block_id
    first = min(i for _, covered in instances for i in covered)
    last = max(i for _, covered in instances for i in covered)
    output_id = len(instances) + 1
    for i in range(n):
        if blocks[i] == -1:  # outside every block: before -> input, after -> output, between -> previous
            blocks[i] = 0 if i < first else output_id if i > last else blocks[i - 1]
    return blocks, ["input", *(name for name, _ in instances), "output"]
