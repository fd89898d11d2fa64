"""Reading an exported graph for quantisation: its weighted layers under their PyTorch names, and what stayed float.

PyTorch's exporter names a node by the scopes of the modules it ran in, e.g.
``/layer1/layer1.0/conv1/Conv`` for the convolution of ``layer1.0.conv1``; convforge shows and
accepts the module path, and keeps the node name for onnxruntime.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import onnx

from convforge.errors import ConvforgeError

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # the layers INT8 speeds up, and whose error is measured
# operations that only move or describe data: never a reason to call a graph partly unquantised
SHAPE_OPS = frozenset({"Shape", "Constant", "ConstantOfShape", "Cast", "Identity", "Range", "Size", "Expand",
                       "NonZero", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Transpose", "Gather", "Slice",
                       "Concat", "Split", "Pad", "QuantizeLinear", "DequantizeLinear"})  # fmt: skip


@dataclass(frozen=True)
class GraphLayer:
    """One weighted node of a graph: its ONNX name, the PyTorch module it came from, its operation."""

    node: str
    module: str
    op: str


def module_path(node_name: str) -> str:
    """The dotted PyTorch module path in an exporter's node name (``/a/a.0/conv/Conv`` → ``a.0.conv``)."""
    # a container's children are scoped under the container's own scope name: ``box.2`` then ``box.2.0``
    parts: list[str] = []
    for scope in node_name.strip("/").split("/")[:-1]:
        if parts and scope.startswith(parts[-1] + "."):
            parts[-1] = scope
        else:
            parts.append(scope)
    return ".".join(parts) or node_name.strip("/")


def consumers_of(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name → the nodes that read it."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def producers_of(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Tensor name → the node that writes it."""
    return {output: node for node in model.graph.node for output in node.output}


def name_nodes(model: onnx.ModelProto) -> None:
    """Name every unnamed node (an inlined function's, e.g. HardSwish's) in the scope of the tensor it or its
    consumer writes, so that it can be kept in FP32 and shown under its module: ``/act2/Mul``."""
    consumers = consumers_of(model)
    taken = {node.name for node in model.graph.node}
    for node in model.graph.node:
        if node.name:
            continue
        written = list(node.output) + [o for out in node.output for c in consumers.get(out, []) for o in c.output]
        scope = next((w.rsplit("/", 1)[0] for w in written if w.startswith("/")), "")
        name, n = f"{scope}/{node.op_type}", 1
        while name in taken:
            n += 1
            name = f"{scope}/{node.op_type}_{n}"
        node.name = name
        taken.add(name)


def weighted_layers(model: onnx.ModelProto) -> list[GraphLayer]:
    """The convolutions, deconvolutions and matrix products of ``model``, in graph order."""
    return [GraphLayer(n.name, module_path(n.name), n.op_type) for n in model.graph.node if n.op_type in WEIGHTED_OPS]


def select_layers(patterns: Sequence[str], layers: Sequence[GraphLayer]) -> list[GraphLayer]:
    """The layers each pattern names: an ONNX node name, a module path, or a module prefix (``layer3`` takes every
    layer in it). An unknown pattern is refused with the names that exist."""
    chosen: list[GraphLayer] = []
    for pattern in patterns:
        found = [layer for layer in layers if pattern in (layer.node, layer.module)
                 or layer.module.startswith(f"{pattern}.")]  # fmt: skip
        if not found:
            names = ", ".join(layer.module for layer in layers[:8])
            more = f", … ({len(layers)} in all)" if len(layers) > 8 else ""
            raise ConvforgeError(f"no quantisable layer is called {pattern!r}; the layers are named like the model's "
                                 f"modules: {names}{more}")  # fmt: skip
        chosen += [layer for layer in found if layer not in chosen]
    return chosen


def float_layers(quantized: onnx.ModelProto) -> list[GraphLayer]:
    """The weighted layers of a QDQ graph whose weights are not dequantised INT8: they compute in FP32."""
    producers = producers_of(quantized)
    return [GraphLayer(node.name, module_path(node.name), node.op_type) for node in quantized.graph.node
            if node.op_type in WEIGHTED_OPS and not has_int8_weights(node, producers)]  # fmt: skip


def has_int8_weights(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> bool:
    """Whether a weighted node's second input (its weights) is dequantised from INT8."""
    weight = producers.get(node.input[1]) if len(node.input) > 1 else None
    return weight is not None and weight.op_type == "DequantizeLinear"


def output_tail(model: onnx.ModelProto) -> list[str]:
    """The nodes after the last weighted layers, from which no weighted layer is reached: a detector's box
    decoding, a pixel shuffle. Quantised, they would round boxes and scores, or pixels, with one shared scale."""
    consumers = consumers_of(model)
    feeds: dict[str, bool] = {}
    for node in reversed(model.graph.node):  # graph order is topological, so consumers are settled first
        feeds[node.name] = any(c.op_type in WEIGHTED_OPS or feeds.get(c.name, False)
                               for output in node.output for c in consumers.get(output, []))  # fmt: skip
    return [n.name for n in model.graph.node if n.op_type not in WEIGHTED_OPS and not feeds[n.name]]


def unquantised_operations(quantized: onnx.ModelProto, quantisable_types: Iterable[str],
                           skipped: Collection[str] = ()) -> dict[str, list[str]]:  # fmt: skip
    """Operation type → module paths of the computing nodes that onnxruntime has no INT8 form for (they run in FP32
    between quantised layers); the nodes ``skipped`` (by name) are not counted."""
    allowed = set(quantisable_types)
    found: dict[str, list[str]] = {}
    for node in quantized.graph.node:
        if node.op_type in allowed or node.op_type in SHAPE_OPS or node.name in skipped:
            continue
        found.setdefault(node.op_type, []).append(module_path(node.name) if node.name else "(unnamed)")
    return found


def describe_operations(operations: dict[str, list[str]]) -> str:
    """``HardSigmoid ×9 (blocks.0.0.se.gate, …), Erf ×1 (head.act)``."""
    parts = []
    for op, where in sorted(operations.items(), key=lambda item: -len(item[1])):
        named = [w for w, _ in Counter(where).most_common(2)]
        parts.append(f"{op} ×{len(where)} ({', '.join(named)}{', …' if len(set(where)) > 2 else ''})")
    return ", ".join(parts)
