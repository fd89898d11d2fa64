"""Layer sensitivity: each channel group pruned alone at several ratios, scored without fine-tuning."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn
from tqdm import tqdm

from convforge.compress.importance import TaylorLoss, build_importance, prepare_gradients
from convforge.compress.layer_pruners import dependency_graph
from convforge.compress.module_paths import folded_layers, restore, use_module_paths
from convforge.compress.output_layers import output_layers
from convforge.compress.pruning import PruningError
from convforge.errors import InvalidValueError
from convforge.progress_bars import hidden

RATIOS = (0.1, 0.3, 0.5, 0.7, 0.9)


def prunable_groups(model: nn.Module, example: torch.Tensor) -> list[str]:
    """One layer name per channel group that pruning may shrink (the group's first convolution or linear layer)."""
    work = copy.deepcopy(model).eval()
    saved = use_module_paths(work)
    fixed = set(output_layers(work, example)) | set(folded_layers(model))
    modules = dict(work.named_modules())
    names = {m: n for n, m in modules.items()}
    graph = dependency_graph(work, example)
    roots = []
    for group in graph.get_all_groups(ignored_layers=[modules[n] for n in fixed],
                                      root_module_types=(nn.Conv2d, nn.Linear)):  # fmt: skip
        roots.append(names[group[0].dep.target.module])
    restore(work, saved)
    return roots


def layer_sensitivity(
    model: nn.Module,
    example_input: torch.Tensor,
    score: Callable[[nn.Module], float],
    ratios: Sequence[float] = RATIOS,
    importance: str = "l2",
    taylor_loss: TaylorLoss | None = None,
    progress: bool = True,
) -> dict[str, list[tuple[float, float]]]:
    """``{layer: [(ratio, score), ...]}``: ``score(model)`` after removing each ``ratio`` of one group's channels
    (the least important by ``importance``), every other layer intact, without fine-tuning."""
    if not ratios or any(not 0 < r < 1 for r in ratios):
        raise InvalidValueError(f"sensitivity ratios must lie strictly between 0 and 1, got {list(ratios)}")
    roots = prunable_groups(model, example_input)
    criterion = build_importance(importance)
    curves: dict[str, list[tuple[float, float]]] = {}
    unscored: list[str] = []
    bar = tqdm(total=len(roots) * len(ratios), desc="sensitivity", unit="prune", disable=hidden(progress))
    for name in roots:
        curves[name] = []
        for ratio in ratios:
            candidate = copy.deepcopy(model).eval()
            saved = use_module_paths(candidate)
            torch.manual_seed(0)
            prepare_gradients(candidate, importance, taylor_loss)
            graph = dependency_graph(candidate, example_input)
            layer = dict(candidate.named_modules())[name]
            prune_out = graph.get_pruner_of_module(layer).prune_out_channels
            channels = graph.get_out_channels(layer)
            group = graph.get_pruning_group(layer, prune_out, list(range(channels)))
            scores = criterion(group)
            if scores is None:  # the criterion has nothing to read here (bn: no BatchNorm in the group)
                unscored.append(name)
                del curves[name]
                bar.update(len(ratios))
                break
            removed = min(max(int(round(channels * ratio)), 1), channels - 1)
            idxs = torch.argsort(scores)[:removed].tolist()
            graph.get_pruning_group(layer, prune_out, idxs).prune()
            candidate.zero_grad(set_to_none=True)
            restore(candidate, saved)
            curves[name].append((removed / channels, float(score(candidate))))
            bar.update()
    bar.close()
    if unscored:
        warnings.warn(f"{importance} importance scores nothing in {', '.join(unscored)}; those layers are left out",
                      stacklevel=2)  # fmt: skip
    if not curves:
        raise PruningError(f"{importance} importance scores no prunable layer of {type(model).__name__}; "
                           "use l1 or l2")  # fmt: skip
    return curves
