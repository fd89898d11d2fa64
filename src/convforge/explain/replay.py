"""The replay: one forward pass of ``[x0, probe_1, …]`` in which every element after the first goes through the
affine map the network applies around x0.

A ``TorchFunctionMode`` intercepts every torch function the model calls. Calls that
touch no activation run as they are; the others go to the rule registered for that
function object (:mod:`convforge.explain.affine_rules`). A call with no rule that
returns tensors is refused with :class:`UnsupportedOperationError` naming it, rather
than giving a wrong answer.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from convforge.explain.affine_rules import (
    METADATA_ATTRIBUTES,
    METADATA_METHODS,
    RULES,
    Call,
    UnsupportedOperationError,
    function_objects,
    is_in_place_name,
)


def _tensors(*values: Any) -> Iterator[torch.Tensor]:
    """The tensors in ``values``, two levels into lists, tuples and dicts (``cat``'s list, ``split``'s tuple)."""
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple, dict, type({}.values()))):
            for item in value.values() if isinstance(value, dict) else value:
                if isinstance(item, torch.Tensor):
                    yield item
                elif isinstance(item, (list, tuple)):
                    yield from (t for t in item if isinstance(t, torch.Tensor))


class _TensorSet:
    """A set of tensors by identity (tensors compare by value, so a WeakSet cannot hold them)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}

    def add(self, tensor: torch.Tensor) -> None:
        self._refs[id(tensor)] = weakref.ref(tensor)

    def __contains__(self, value: Any) -> bool:
        ref = self._refs.get(id(value))
        return ref is not None and ref() is value


class _Route:
    """What to do with one function object: its name, its rule (None: metadata, run as it is), and whether it
    writes in place."""

    __slots__ = ("in_place", "name", "rule")

    def __init__(self, name: str, rule: Callable[..., Any] | None, in_place: bool) -> None:
        self.name, self.rule, self.in_place = name, rule, in_place


METADATA = _Route("metadata", None, False)


def _build_routes() -> dict[Any, _Route]:
    """Every known function object → its route, from the rules' names resolved in torch's namespaces."""
    routes: dict[Any, _Route] = {}
    for name, rule in RULES.items():
        for func in function_objects(name):
            routes.setdefault(func, _Route(name, rule, is_in_place_name(name)))
    for attribute in METADATA_ATTRIBUTES:
        routes[getattr(torch.Tensor, attribute).__get__] = METADATA  # property getters: equal whenever fetched
    for name in METADATA_METHODS:
        for func in function_objects(name):
            routes[func] = METADATA
    routes[torch._assert] = METADATA
    return routes


ROUTES = _build_routes()


def _describe(func: Callable) -> str:
    """A function's name for an error message."""
    name = getattr(func, "__name__", None) or str(func)
    owner = getattr(func, "__self__", None)
    return f"{getattr(owner, '__name__', 'attribute')}.__get__" if name == "__get__" else name


class Replay(TorchFunctionMode):
    """Intercepts torch functions during one forward of ``[x0, probes…]``."""

    def __init__(self) -> None:
        super().__init__()
        self.batched = _TensorSet()  # activations: tensors that carry [x0, probes…]
        self.gates = _TensorSet()  # activations that came out of a sigmoid-like gate

    def mark(self, out: Any) -> Any:
        if isinstance(out, torch.Tensor):
            self.batched.add(out)
        else:
            for t in _tensors(out):
                self.batched.add(t)
        return out

    def is_batched(self, value: Any) -> bool:
        return value in self.batched

    def touches_batched(self, args: tuple, kwargs: dict) -> bool:
        """Whether an argument (or an item of a list, tuple or dict argument, as for ``cat``) is an activation."""
        batched = self.batched
        for value in (*args, *kwargs.values()):
            if isinstance(value, dict):
                value = tuple(value.values())
            if isinstance(value, (list, tuple)):
                if any(item in batched for item in value):
                    return True
            elif value in batched:
                return True
        return False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        route = ROUTES.get(func)
        if route is METADATA or not self.touches_batched(args, kwargs):
            return func(*args, **kwargs)
        if route is None:
            out = func(*args, **kwargs)
            if next(_tensors(out), None) is None:
                return out  # sizes, shapes, dtypes: no activation values leave
            raise UnsupportedOperationError(
                f"LinearScope cannot replay {_describe(func)!r} on the network's activations as an affine map; "
                "supported are linear operations, the point-wise activations, max pooling, norms and products of "
                "two activations (see convforge.explain.affine_rules)"
            )
        call = Call(func, args, kwargs, route.name, route.in_place or bool(kwargs.get("inplace")))
        target = args[0] if args else None
        if call.in_place and isinstance(target, torch.Tensor) and target.requires_grad and torch.is_grad_enabled():
            # replay on a copy, so that autograd keeps the input it saved, then write back as asked
            copy = Call(func, (target.clone(), *args[1:]), kwargs, route.name, True)
            target.copy_(route.rule(self, copy))
            return self.mark(target)
        return self.mark(route.rule(self, call))


def replay(model: torch.nn.Module, batch: torch.Tensor) -> Any:
    """The model's output on ``batch = [x0, …]``, every element after the first replayed through x0's affine map."""
    mode = Replay()
    with mode:
        mode.mark(batch)
        return model(batch)
