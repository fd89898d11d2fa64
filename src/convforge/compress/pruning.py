"""Structured pruning on Torch-Pruning (DepGraph): a physically smaller model, to a measured target.

``convforge.prune`` removes whole channels, with every channel coupled to them (residual
sums, concatenations, depthwise convolutions, norms), so the result is an ordinary,
smaller dense model. The target is measured, not assumed: Torch-Pruning's channel ratio
is searched (bisection) until the pruned model's MACs (``macs`` convention), parameters
or latency on this machine reach the goal. Layers whose width the outputs fix are found
from the traced graph and never pruned (:mod:`convforge.compress.output_layers`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from tqdm import tqdm

from convforge.compress.importance import TaylorLoss, build_importance, check_importance, prepare_gradients
from convforge.compress.layer_pruners import LAYER_PRUNERS
from convforge.compress.module_paths import Saved, folded_layers, restore, use_module_paths
from convforge.compress.output_layers import WIDTH_LAYERS, output_layers
from convforge.compress.pruning_target import PruneTarget, measurer
from convforge.errors import ConvforgeError, InvalidValueError
from convforge.model_origin import origin_of, set_origin
from convforge.model_outputs import output_shapes
from convforge.progress_bars import hidden
from convforge.runs.checkpoint import save_checkpoint
from convforge.runs.structure import Structure, structure_of
from convforge.tables import human_count, text_table

SCOPES = ("global", "local")
MAX_MISS = 0.05  # a pruning that misses its goal by more tries other settings (local scope, no rounding)
SEARCH_STEPS = 16  # bisection steps on the channel ratio per pruning step
TOLERANCE = {"macs": 0.01, "params": 0.01, "latency": 0.03}  # relative distance to the goal that ends the search


class PruningError(ConvforgeError):
    """A model cannot be pruned as asked; the message names the layer and why."""


@dataclass
class LayerWidth:
    """One convolution or linear layer's channels before and after pruning."""

    name: str
    kind: str
    in_before: int
    in_after: int
    out_before: int
    out_after: int
    fixed: bool = False  # its width is fixed by the model's outputs (never pruned)


@dataclass
class PruneResult:
    """The pruned model and a record of what was removed."""

    model: nn.Module = field(repr=False)
    target: str
    importance: str
    scope: str
    steps: int
    round_to: int | None
    goal: float  # the target metric's goal (MACs, parameters or ms)
    reached: float  # the pruned model's value of that metric
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    layers: list[LayerWidth]
    fixed_layers: list[str]
    structure: Structure
    seconds: float
    input_size: tuple[int, ...] = ()  # the example input's per-sample shape

    @property
    def macs_ratio(self) -> float:
        return self.macs_after / max(self.macs_before, 1)

    @property
    def params_ratio(self) -> float:
        return self.params_after / max(self.params_before, 1)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, JSON-ready."""
        out = {k: v for k, v in asdict(self).items() if k not in ("model", "layers")}
        out["layers"] = [asdict(layer) for layer in self.layers]
        return out

    def save(self, path: str | Path, **meta: Any) -> Path:
        """Write the pruned model as a safetensors checkpoint (plus ``meta``) that
        :func:`convforge.runs.load_trained` rebuilds from the registered name and the structure, without pickle."""
        origin = origin_of(self.model)
        if origin is None:
            raise ConvforgeError("only a model built by convforge.create_model (or loaded from a run) can be saved "
                                 "as a structure: this one has no registered name")  # fmt: skip
        from convforge.models import origin_info

        meta = {"epoch": 0, **origin.record(),
                "structure": origin.structure, "input_size": list(self.input_size),
                "recipe": {"task": origin_info(origin).task},
                "pruning": {k: v for k, v in self.to_dict().items() if k not in ("structure", "layers")},
                **meta}  # fmt: skip
        return save_checkpoint(Path(path).with_suffix(""), self.model.state_dict(), meta)

    def layer_table(self) -> str:
        """Channels in and out of every convolution and linear layer, before → after."""
        rows = [(w.name, w.kind, f"{w.in_before} → {w.in_after}", f"{w.out_before} → {w.out_after}",
                 f"{w.out_after / max(w.out_before, 1):.2f}", "output (fixed)" if w.fixed else "")
                for w in self.layers]  # fmt: skip
        return text_table(["layer", "type", "in", "out", "kept", ""], rows, align="llrrrl")

    def summary(self) -> str:
        """MACs and parameters before and after, and the target."""
        rows = [
            ("MACs", human_count(self.macs_before), human_count(self.macs_after), f"{self.macs_ratio:.3f}"),
            ("parameters", human_count(self.params_before), human_count(self.params_after), f"{self.params_ratio:.3f}"),
        ]
        table = text_table(["", "dense", "pruned", "ratio"], rows, align="lrrr")
        return f"{table}\ntarget {self.target} with {self.importance} importance ({self.scope}, {self.steps} step(s))"


def prune(
    model: nn.Module,
    example_input: torch.Tensor,
    target: str | PruneTarget = "macs=0.5",
    importance: str = "l2",
    *,
    scope: str = "global",
    steps: int = 1,
    round_to: int | None = 8,
    finetune: Callable[[nn.Module, int], None] | None = None,
    taylor_loss: TaylorLoss | None = None,
    ignored_layers: Sequence[str] = (),
    max_layer_ratio: float = 0.9,
    seed: int = 0,
    progress: bool = True,
) -> PruneResult:
    """Prune ``model`` (left unchanged: a pruned copy is returned) until ``target`` holds at ``example_input``.

    ``target``: ``macs=R``, ``params=R`` or ``latency=R`` (a ratio of the dense model) or ``latency=Nms``.
    ``importance``: l1, l2, bn, taylor (needs ``taylor_loss(model) -> loss`` on a few real batches), lamp,
    fpgm or random. ``scope``: one ranking over all layers (global) or the same ratio per layer (local).
    ``steps`` > 1 prunes iteratively, the goal approached linearly, with ``finetune(model, step)`` after
    each step but the last. ``round_to`` keeps channel counts multiples of it (8 suits CPUs); None for any.
    ``ignored_layers`` names layers never to prune, beyond the output layers found from the graph.
    """
    started = time.perf_counter()
    goal_target = PruneTarget.parse(target)
    check_importance(importance)
    if scope not in SCOPES:
        raise InvalidValueError(f"scope {scope!r} is not known; use one of {', '.join(SCOPES)}")
    for name, value, low in (("steps", steps, 1), ("round_to", round_to, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise InvalidValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0 < max_layer_ratio < 1:
        raise InvalidValueError(f"max_layer_ratio must lie strictly between 0 and 1, got {max_layer_ratio!r}")
    if not isinstance(example_input, torch.Tensor):
        raise InvalidValueError(
            f"example_input must be a tensor (a batch the model takes), got {type(example_input).__name__}"
        )

    dense = copy.deepcopy(model).eval()  # every pruned candidate is a copy of this one
    known = dict(dense.named_modules())
    unknown = [n for n in ignored_layers if n not in known]
    if unknown:
        raise InvalidValueError(f"ignored layer(s) {', '.join(map(repr, unknown))} are not in the model")
    saved = use_module_paths(dense)
    reference_shapes = _checked_shapes(dense, example_input)
    fixed = sorted(set(output_layers(dense, example_input)) | set(ignored_layers) | set(folded_layers(model)))
    measure = _as_deployed(measurer(goal_target.metric, example_input), saved)
    dense_value = measure(dense)
    goal = goal_target.goal(dense_value)
    if goal >= dense_value:
        raise InvalidValueError(f"the dense model already needs {_shown(dense_value, goal_target)} {goal_target.unit}, "
                                f"at or under the goal {_shown(goal, goal_target)}")  # fmt: skip
    attempts = [(scope, round_to)]
    # a latency missed by noise is not mended by other settings; fine-tuning between steps is not repeated
    if goal_target.metric != "latency" and finetune is None:
        attempts += [(scope, None), ("local", round_to), ("local", None)]
    best: tuple[float, nn.Module, float, _Settings] | None = None
    for attempt_scope, attempt_round in dict.fromkeys(attempts):
        settings = _Settings(importance, attempt_scope, attempt_round, max_layer_ratio, taylor_loss, fixed, seed,
                             reference_shapes)  # fmt: skip
        pruned, value = _prune_steps(dense, example_input, dense_value, goal, steps, measure, settings, goal_target,
                                     finetune and _with_origin(finetune, model), saved, progress)  # fmt: skip
        miss = abs(value / goal - 1)
        if best is None or miss < best[0]:
            best = (miss, pruned, value, settings)
        if miss <= MAX_MISS:
            break
    assert best is not None
    _, work, reached, settings = best
    if (settings.scope, settings.round_to) != (scope, round_to):
        warnings.warn(f"pruning with scope={scope}, round_to={round_to} could not come within {MAX_MISS:.0%} of "
                      f"{goal_target}; used scope={settings.scope}, round_to={settings.round_to}",
                      stacklevel=2)  # fmt: skip
    restore(work, saved)
    restore(dense, saved)
    return _result(model, dense, work, example_input, goal_target, settings, steps, goal, (dense_value, reached),
                   started)  # fmt: skip


def _with_origin(finetune: Callable[[nn.Module, int], None], model: nn.Module) -> Callable[[nn.Module, int], None]:
    """``finetune`` given the partly pruned model marked with its registered name and structure (when ``model``
    has one), so that the runs it trains reload."""
    origin = origin_of(model)

    def marked(work: nn.Module, step: int) -> None:
        if origin is not None:
            from convforge.models import rebuild

            structure = structure_of(work, rebuild(origin))
            set_origin(work, origin.with_structure(structure))
        finetune(work, step)

    return marked


def _as_deployed(measure: Callable[[nn.Module], float], saved: Saved) -> Callable[[nn.Module], float]:
    """``measure`` taken with the model's blocks on their usual (fast, folded) paths."""

    def measured(model: nn.Module) -> float:
        restore(model, saved)
        try:
            return measure(model)
        finally:
            use_module_paths(model)

    return measured


def _prune_steps(work: nn.Module, example: torch.Tensor, dense_value: float, goal: float, steps: int,
                 measure: Callable[[nn.Module], float], settings: _Settings, target: PruneTarget,
                 finetune: Callable[[nn.Module, int], None] | None, saved: Saved,
                 progress: bool) -> tuple[nn.Module, float]:  # fmt: skip
    """``steps`` prunings of ``work``, each to its share of the way from ``dense_value`` to ``goal``; returns the
    pruned model and its measure (fine-tuning changes neither MACs nor parameters, so it is not measured again)."""
    value = dense_value
    for step in range(1, steps + 1):
        step_goal = dense_value - (dense_value - goal) * step / steps
        work, value = _prune_to(work, value, example, step_goal, measure, settings, target,
                                f"pruning {step}/{steps}" if steps > 1 else "pruning", progress)  # fmt: skip
        if finetune is not None and step < steps:
            restore(work, saved)
            finetune(work, step)
            work.cpu().eval()  # training may have moved it; pruning measures on the example's device
            use_module_paths(work)
    return work, value


@dataclass
class _Settings:
    importance: str
    scope: str
    round_to: int | None
    max_layer_ratio: float
    taylor_loss: TaylorLoss | None
    fixed: list[str]
    seed: int
    output_shapes: Any


def _prune_to(model: nn.Module, current: float, example: torch.Tensor, goal: float,
              measure: Callable[[nn.Module], float], settings: _Settings, target: PruneTarget, desc: str,
              progress: bool) -> tuple[nn.Module, float]:  # fmt: skip
    """A copy of ``model`` (whose measure is ``current``) pruned at the channel ratio whose measure comes closest
    to ``goal`` (bisection), and that measure."""
    tolerance = TOLERANCE[target.metric]
    lo, hi = 0.0, settings.max_layer_ratio
    ratio = min(max(1 - math.sqrt(goal / current), 0.01), hi)  # MACs shrink about as the square of the widths
    best: tuple[float, nn.Module, float] | None = None
    bar = tqdm(range(SEARCH_STEPS), desc=desc, unit="try", leave=False, disable=hidden(progress))
    for _ in bar:
        candidate = _prune_copy(model, example, ratio, settings)
        value = measure(candidate)
        miss = abs(value / goal - 1)
        if best is None or miss < best[0]:
            best = (miss, candidate, value)
        bar.set_postfix(ratio=f"{ratio:.3f}", reached=f"{value / goal:.3f}×goal")
        if miss <= tolerance:
            break
        lo, hi = (ratio, hi) if value > goal else (lo, ratio)
        ratio = (lo + hi) / 2
    bar.close()
    assert best is not None
    if _size(best[1]) >= _size(model):
        layers = ", ".join(settings.fixed) or "none"
        raise PruningError(f"nothing in {type(model).__name__} can be pruned: no channel group is free of the layers "
                           f"whose width the outputs fix ({layers})")  # fmt: skip
    return best[1], best[2]


def _size(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _prune_copy(model: nn.Module, example: torch.Tensor, ratio: float, settings: _Settings) -> nn.Module:
    """A copy of ``model`` with Torch-Pruning's ``ratio`` of channels removed, checked to run as before."""
    candidate = copy.deepcopy(model)
    torch.manual_seed(settings.seed)  # random importance draws the same scores for every candidate
    prepare_gradients(candidate, settings.importance, settings.taylor_loss)
    modules = dict(candidate.named_modules())
    try:
        with torch.enable_grad():
            pruner = tp.pruner.MetaPruner(
                candidate, example, importance=build_importance(settings.importance),
                global_pruning=settings.scope == "global", pruning_ratio=ratio,
                max_pruning_ratio=settings.max_layer_ratio, round_to=settings.round_to,
                ignored_layers=[modules[name] for name in settings.fixed],
                customized_pruners=dict(LAYER_PRUNERS),
            )  # fmt: skip
            pruner.step()
    except (RuntimeError, ValueError, IndexError, KeyError, AssertionError) as err:
        raise PruningError(f"Torch-Pruning could not prune {type(model).__name__}: {_first_line(err)}") from err
    candidate.zero_grad(set_to_none=True)
    shapes = _checked_shapes(candidate, example)
    if shapes != settings.output_shapes:
        raise PruningError(f"pruning changed the output shapes from {settings.output_shapes} to {shapes}; a layer "
                           "that sets them was pruned (pass its name in ignored_layers)")  # fmt: skip
    return candidate


def _checked_shapes(model: nn.Module, example: torch.Tensor) -> Any:
    """The shapes of the model's outputs on ``example``; a failing layer is named."""
    entered: list[str] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args, n=name: entered.append(n))
             for name, m in model.named_modules() if name]  # fmt: skip
    try:
        with torch.no_grad():
            output = model(example)
    except (RuntimeError, ValueError, IndexError) as err:
        where = entered[-1] if entered else "the model's first layer"
        layer = dict(model.named_modules()).get(where)
        raise PruningError(f"after pruning, layer {where} ({type(layer).__name__}) fails: {_first_line(err)}") from err
    finally:
        for hook in hooks:
            hook.remove()
    return output_shapes(output)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _shown(value: float, target: PruneTarget) -> str:
    return f"{value:.3g}" if target.metric == "latency" else human_count(value)


def _layer_widths(dense: nn.Module, pruned: nn.Module, fixed: list[str]) -> list[LayerWidth]:
    before = dict(dense.named_modules())
    rows = []
    for name, layer in pruned.named_modules():
        if not isinstance(layer, WIDTH_LAYERS) or name not in before:
            continue
        old = before[name]
        if isinstance(layer, nn.Linear):
            rows.append(LayerWidth(name, "Linear", old.in_features, layer.in_features, old.out_features,
                                   layer.out_features, name in fixed))  # fmt: skip
        else:
            rows.append(LayerWidth(name, type(layer).__name__, old.in_channels, layer.in_channels, old.out_channels,
                                   layer.out_channels, name in fixed))  # fmt: skip
    return rows


def _result(model: nn.Module, dense: nn.Module, pruned: nn.Module, example: torch.Tensor, target: PruneTarget,
            settings: _Settings, steps: int, goal: float, measured: tuple[float, float],
            started: float) -> PruneResult:  # fmt: skip
    from convforge.models import rebuild
    from convforge.profiler import count_macs

    dense_value, reached = measured  # the target metric, dense and pruned: MACs need no second count
    macs = (int(dense_value), int(reached)) if target.metric == "macs" else (count_macs(dense, example),
                                                                             count_macs(pruned, example))  # fmt: skip
    origin = origin_of(model)
    reference = rebuild(origin) if origin is not None else dense
    structure = structure_of(pruned, reference)
    if origin is not None:
        set_origin(pruned, origin.with_structure(structure))
    return PruneResult(
        model=pruned,
        target=str(target),
        importance=settings.importance,
        scope=settings.scope,
        steps=steps,
        round_to=settings.round_to,
        goal=goal,
        reached=reached,
        macs_before=macs[0],
        macs_after=macs[1],
        params_before=sum(p.numel() for p in dense.parameters()),
        params_after=sum(p.numel() for p in pruned.parameters()),
        layers=_layer_widths(dense, pruned, settings.fixed),
        fixed_layers=settings.fixed,
        structure=structure,
        seconds=time.perf_counter() - started,
        input_size=tuple(example.shape[1:]),
    )
