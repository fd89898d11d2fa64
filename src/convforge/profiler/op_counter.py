"""Count every tensor operation of a forward pass and attribute it to the innermost module.

:class:`OpCounter` is a ``TorchDispatchMode``: it sees each ATen operation a forward
pass runs, whether it came from a module or from a functional call, and records its
cost (see :mod:`convforge.profiler.op_costs`). Forward hooks on every submodule keep a
stack of the modules currently running, so each operation is charged to the
innermost one, and so a failing forward can say which module failed.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from convforge.profiler.activation_memory import ActivationMemoryTracker
from convforge.profiler.op_costs import OpCost, cost_of, op_name
from convforge.profiler.thop_hooks import seen_by_thop


@dataclass
class OpRecord:
    """One operation call (or one category's part of it): where it ran, what it was, what it cost."""

    module: str
    op: str
    cost: OpCost


@dataclass
class ModuleCall:
    """What a module's forward produced, as seen by the hooks."""

    path: str
    type: str
    output_shape: Any = None
    seen_by_thop: bool = False  # whether thop 0.1 counts what this module runs directly


@dataclass
class CountingState:
    """Everything the counter saw during one forward pass."""

    records: list[OpRecord] = field(default_factory=list)
    uncounted: Counter = field(default_factory=Counter)
    modules: dict[str, ModuleCall] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    failed_in: dict[int, str] = field(default_factory=dict)  # id(exception) -> innermost module it left

    def failing_module(self, err: BaseException) -> str:
        """The innermost module that ``err`` propagated out of ("" for the model's own code)."""
        return self.failed_in.get(id(err), "")


def _shape_of(output: Any) -> Any:
    """A printable shape for a module output: a tuple for a tensor, a list for several."""
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        shapes = [_shape_of(o) for o in output]
        return [s for s in shapes if s is not None] or None
    if isinstance(output, dict):
        return {k: _shape_of(v) for k, v in output.items()}
    return None


class ModuleStack:
    """Forward hooks that keep ``state.stack`` equal to the paths of the modules now running.

    The exit hook also runs when a forward raises, so the stack stays right when a
    parent catches a child's exception; the innermost module an exception left is
    remembered in ``state.failed_in``. TorchScript modules take no hooks: their work
    is charged to the nearest ordinary module above them.
    """

    def __init__(self, model: nn.Module, state: CountingState) -> None:
        self.state = state
        self.handles: list[Any] = []
        try:
            for path, module in model.named_modules():
                call = ModuleCall(path, type(module).__name__, seen_by_thop=seen_by_thop(type(module)))
                state.modules.setdefault(path, call)
                if isinstance(module, torch.jit.ScriptModule):
                    continue
                self.handles.append(module.register_forward_pre_hook(self._enter(path)))
                self.handles.append(module.register_forward_hook(self._leave(path), always_call=True))
        except BaseException:
            self.remove()
            raise

    def _enter(self, path: str):
        def hook(module: nn.Module, args: Any) -> None:
            self.state.stack.append(path)

        return hook

    def _leave(self, path: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            stack = self.state.stack
            if path in stack:  # pop down to this module, whatever a failing child left above it
                del stack[len(stack) - 1 - stack[::-1].index(path) :]
            error = sys.exc_info()[1]  # set while the hook runs because the forward raised
            if error is not None:
                self.state.failed_in.setdefault(id(error), path)
                return
            call = self.state.modules[path]
            call.output_shape = _shape_of(output)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


class OpCounter(TorchDispatchMode):
    """Record the cost of every ATen operation, charged to the innermost running module."""

    def __init__(self, state: CountingState, memory: ActivationMemoryTracker | None = None) -> None:
        super().__init__()
        self.state = state
        self.memory = memory

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = op_name(func)
        module = self.state.stack[-1] if self.state.stack else ""
        parts = cost_of(name, args, kwargs, out)
        if parts is None:
            self.state.uncounted[name] += 1
        else:
            call = self.state.modules.get(module)
            if call is not None and call.seen_by_thop:  # what thop's own hooks would count
                parts = tuple(replace(cost, thop_hooks=cost.thop) if cost.thop else cost for cost in parts)
            self.state.records.extend(OpRecord(module, name, cost) for cost in parts)
        if self.memory is not None:
            tensors, _ = tree_flatten(out)
            self.memory.on_outputs([t for t in tensors if isinstance(t, torch.Tensor)], args)
        return out
