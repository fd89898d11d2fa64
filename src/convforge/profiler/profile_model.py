"""``convforge.profile``: parameters, MACs/FLOPs, activation memory and latency of a model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from convforge.errors import ForwardError, InvalidValueError
from convforge.input_shapes import is_multi_input, shape_text, valid_shapes
from convforge.profiler.activation_memory import ActivationMemoryTracker
from convforge.profiler.latency import measure_latency
from convforge.profiler.op_costs import CONVENTIONS
from convforge.profiler.op_counter import CountingState, ModuleStack, OpCounter
from convforge.profiler.result import ModuleRow, ProfileResult, category_totals

# what a model's forward raises when it cannot run on the input (shapes, types, its own checks)
FORWARD_FAILURES = (RuntimeError, TypeError, ValueError, IndexError, KeyError, AttributeError, NotImplementedError,
                    AssertionError, ArithmeticError)  # fmt: skip

InputSpec = Sequence[int] | torch.Tensor | tuple | list


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _make_inputs(model: nn.Module, inputs: InputSpec, batch_size: int) -> tuple:
    """Turn a per-sample shape (or one per input stream), a tensor, or a tuple of tensors into positional model
    inputs."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(i, int) for i in inputs):
        inputs = (tuple(inputs),)
    if is_multi_input(inputs) and all(isinstance(i, int) for shape in inputs for i in shape):
        if not valid_shapes(inputs):
            raise InvalidValueError(f"input sizes must be positive integers, got {shape_text(inputs)}")
        if batch_size < 1:
            raise InvalidValueError(f"batch size must be a positive integer, got {batch_size}")
        device = _model_device(model)
        return tuple(torch.randn(batch_size, *shape, device=device) for shape in inputs)
    if isinstance(inputs, (tuple, list)) and inputs:
        return tuple(inputs)
    raise InvalidValueError(
        "inputs must be a per-sample shape such as (3, 224, 224), an example tensor, or a tuple of tensors; "
        f"got {inputs!r}"
    )


def _input_shapes(inputs: tuple) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor)]


def _ancestors(path: str) -> list[str]:
    """A module path and every path above it, up to the model itself (``""``)."""
    parts = path.split(".") if path else []
    return [".".join(parts[:i]) for i in range(len(parts), -1, -1)]


def _module_rows(model: nn.Module, state: CountingState) -> list[ModuleRow]:
    """Per-module rows with params and MACs summed over each module's subtree."""
    own: dict[str, Counter] = {}
    for record in state.records:
        counts = own.setdefault(record.module, Counter())
        for convention in CONVENTIONS:
            counts[convention] += record.cost.under(convention)
    inclusive: dict[str, Counter] = {path: Counter() for path in state.modules}
    for path, counts in own.items():
        for ancestor in _ancestors(path):
            inclusive.setdefault(ancestor, Counter()).update(counts)
    params: Counter = Counter()
    for name, parameter in model.named_parameters():
        for ancestor in _ancestors(name.rpartition(".")[0]):
            params[ancestor] += parameter.numel()
    rows = []
    for path, _ in model.named_modules():
        call = state.modules[path]
        rows.append(
            ModuleRow(
                path=path,
                type=call.type,
                depth=path.count(".") + 1 if path else 0,
                output_shape=call.output_shape,
                params=params[path],
                macs={c: inclusive[path][c] for c in CONVENTIONS},
            )
        )
    return rows


def _forward_error(model_name: str, inputs: tuple, state: CountingState, err: Exception) -> ForwardError:
    """A one-sentence error naming the innermost module the exception came out of."""
    path = state.failing_module(err)
    module_type = state.modules[path].type if path in state.modules else ""
    shapes = ", ".join("x".join(map(str, s)) for s in _input_shapes(inputs))
    reason = " ".join(str(err).split()) or type(err).__name__
    if len(reason) > 300:
        reason = reason[:297] + "..."
    where = f" in module {path!r} ({module_type})" if path else ""
    message = f"the forward pass of {model_name} failed{where} for input {shapes}: {reason}"
    return ForwardError(message, path, module_type)


def profile(
    model: nn.Module,
    inputs: InputSpec,
    *,
    batch_size: int = 1,
    convention: str = "macs",
    latency: bool = False,
    runs: int = 50,
    warmup: int = 10,
    threads: int | None = None,
    name: str | None = None,
    progress: bool = False,
) -> ProfileResult:
    """Profile one forward pass of ``model``.

    ``inputs`` is a per-sample shape such as ``(3, 224, 224)`` (a random batch of
    ``batch_size`` is made on the model's device), one such shape per input for a model
    of several inputs (``((10, 128), (80, 2048), (10, 512))``), an example tensor, or a
    tuple of tensors passed positionally. The model runs in eval mode without gradients; its
    mode is restored afterwards.

    Returns a :class:`ProfileResult` with parameters (total and trainable), MACs and
    FLOPs under every convention (``macs``, ``thop``, ``full``; ``convention`` picks
    the one reported as ``.macs``), MACs per operation category, peak activation
    memory in bytes, a per-module table, the operations that have no formula, and,
    when ``latency`` is set, the median and spread of ``runs`` timed passes in ms.
    """
    if convention not in CONVENTIONS:
        raise InvalidValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    name = name or type(model).__name__
    example = _make_inputs(model, inputs, batch_size)
    state = CountingState()
    external = [*model.parameters(), *model.buffers(), *(t for t in example if isinstance(t, torch.Tensor))]
    memory = ActivationMemoryTracker(external)
    was_training = model.training
    stack = None
    try:
        stack = ModuleStack(model, state)
        model.eval()
        with torch.no_grad(), OpCounter(state, memory):
            output = model(*example)
        del output
    except FORWARD_FAILURES as err:
        if stack is None:
            raise
        raise _forward_error(name, example, state, err) from err
    finally:
        if stack is not None:
            stack.remove()
        model.train(was_training)

    totals = {c: sum(r.cost.under(c) for r in state.records) for c in CONVENTIONS}
    result = ProfileResult(
        model=name,
        input_shapes=_input_shapes(example),
        convention=convention,
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs_by_convention=totals,
        macs_by_category=category_totals(state.records),
        activation_peak_bytes=memory.peak_bytes,
        modules=_module_rows(model, state),
        ops=state.records,
        uncounted_ops=dict(state.uncounted),
    )
    if latency:
        result.latency = measure_latency(model, example, runs=runs, warmup=warmup, threads=threads, progress=progress)
    return result


def count_macs(model: nn.Module, inputs: Any, convention: str = "macs", batch_size: int = 1) -> int:
    """MACs of one forward pass under ``convention`` (a shortcut for ``profile(...).macs``)."""
    return profile(model, inputs, batch_size=batch_size, convention=convention).macs
