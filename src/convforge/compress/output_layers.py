"""The layers whose width the model's outputs fix: class logits, box distributions, pixel-shuffled images.

They are found from the traced graph, not listed per model: walking back from every
output through operations without trainable weights (activations, reshapes,
concatenations, pixel shuffles, fixed convolutions such as a detector's distribution
integral), the first trainable convolution or linear layer on each path writes
channels that the output's meaning fixes. Pruning any of them would change what the
model answers, so they are never pruned.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from convforge.compress.layer_pruners import dependency_graph
from convforge.model_outputs import output_tensors

WIDTH_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


def output_layers(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Names of the layers whose output channels ``model``'s outputs depend on directly (see the module doc)."""
    outputs: list[object] = []

    def keep(output: object) -> object:
        outputs.append(output)
        return output

    graph = dependency_graph(model, example_input, output_transform=keep)
    roots = {t.grad_fn for t in output_tensors(outputs[0]) if t.grad_fn is not None}
    names = {module: name for name, module in model.named_modules()}
    stack = [n for n in graph.module2node.values() if n.grad_fn in roots or n.type == tp.ops.OPTYPE.OUTPUT]
    seen, found = set(), []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        module = node.module
        if isinstance(module, WIDTH_LAYERS) and module.weight.requires_grad:
            found.append(names[module])
            continue
        stack.extend(node.inputs)
    return sorted(set(found))
