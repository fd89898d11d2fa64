"""Convert the residual stacks of a model between layouts: sequential, parallel, Taylor order n.

Every layout holds the same branch modules, so a conversion only swaps the container
that composes them. The rest of the model is left exactly as it was.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

from torch import nn

from convforge.errors import InvalidValueError
from convforge.nn.residual_stack import (
    ParallelResidualStack,
    ResidualStack,
    SequentialResidualStack,
    TaylorResidualStack,
)


def to_parallel(model: nn.Module, share_weights: bool = True) -> nn.Module:
    """``model`` with every residual stack in the parallel (shallow) layout.

    With ``share_weights`` the new model uses the very same parameter and buffer
    tensors as ``model`` (training one trains the other); otherwise it gets copies.
    ``model`` itself is not modified.
    """
    return _convert(model, ParallelResidualStack.from_branches, "the parallel layout", share_weights)


def to_sequential(model: nn.Module, share_weights: bool = True) -> nn.Module:
    """``model`` with every residual stack in the sequential (deep) layout (see :func:`to_parallel`)."""
    return _convert(model, SequentialResidualStack.from_branches, "the sequential layout", share_weights)


def taylor_truncate(model: nn.Module, order: int, share_weights: bool = True) -> nn.Module:
    """``model`` with every residual stack evaluating its expansion up to order ``order``.

    Order 1 is the parallel layout; an order at or above a stack's depth is its full
    expansion (equal to the sequential layout for linear branches).
    """
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise InvalidValueError(f"order = {order!r} is not allowed; use a positive integer (1 = parallel layout)")
    return _convert(
        model, lambda branches: TaylorResidualStack.from_branches(branches, order), f"order {order}", share_weights
    )


def residual_stacks(model: nn.Module) -> list[tuple[str, ResidualStack]]:
    """The residual stacks in ``model``, by qualified module name ("" when ``model`` is one)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ResidualStack)]


def _convert(
    model: nn.Module, make: Callable[[nn.ModuleList], ResidualStack], target: str, share_weights: bool
) -> nn.Module:
    stacks = residual_stacks(model)
    if not stacks:
        raise InvalidValueError(
            f"{type(model).__name__} has no residual stack to convert to {target}: convforge converts "
            "SequentialResidualStack, ParallelResidualStack and TaylorResidualStack modules "
            "(convforge.nn.residual_stack), as in the residual_stack_net models"
        )
    memo: dict[int, object] = {}
    if share_weights:  # the copy gets new modules around the very same tensors
        memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    converted = copy.deepcopy(model, memo)
    for name, _ in stacks:
        old = converted.get_submodule(name)
        new = make(old.branches)
        new.train(old.training)
        if name == "":
            return new
        converted.set_submodule(name, new)
    return converted
