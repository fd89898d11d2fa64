"""The registry of spec blocks: names a spec row may use, and how each block's output channels follow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from convforge.errors import ConvforgeError

CHANNEL_RULES = ("out", "fixed", "same", "sum", "list")


@dataclass(frozen=True)
class BlockInfo:
    """A registered block: how to build it and how its output channels follow from its inputs and arguments."""

    name: str
    factory: Callable[..., nn.Module]
    channels: str  # "out": args[0] is the output channel count (scaled); "fixed": args[0], unscaled;
    # "same": as its input; "sum": of the inputs; "list": several outputs, the built module's ``out_channels``
    scaled: tuple[int, ...] = ()  # further argument positions that hold channel counts, scaled like args[0]
    many_inputs: bool = False  # whether the block reads a list of several tensors


_BLOCKS: dict[str, BlockInfo] = {}


def register_block(
    name: str | None = None, channels: str = "out", scaled: tuple[int, ...] = (), many_inputs: bool | None = None
) -> Callable[[Callable[..., nn.Module]], Any]:
    """Register a block for specs, under ``name`` (default: the factory's name).

    The factory is called as ``factory(c_in, c_out, *args)`` for ``channels="out"``
    blocks (``c_out`` is the row's first argument after width scaling) and
    ``"fixed"`` ones (the first argument as it is, e.g. a class count), and as
    ``factory(c_in, *args)`` for ``"same"`` and ``"sum"`` blocks (``c_in`` is a list for
    several inputs). A ``"list"`` block has several outputs (a neck): it is called as
    ``factory(c_in, *args)`` with ``c_in`` always a list, returns a list of tensors, and
    the module it builds says its channels in ``out_channels``, one per output; its
    copies (``repeats``) read each other's outputs. ``scaled`` lists further positions in a row's args that are channel
    counts (an expansion width, say): an integer there is scaled like the output
    channels; any other value (``None``) is passed as it is. ``many_inputs`` says the
    block's forward takes a list of several tensors (default: for ``"sum"`` and ``"list"``
    blocks); a row that gives any other block several inputs is refused.

    The built-in blocks are registered when :mod:`convforge.spec` is imported, before
    any user code can register, so a user block never takes a built-in name.
    """
    if channels not in CHANNEL_RULES:
        raise ConvforgeError(f"channels must be one of {', '.join(map(repr, CHANNEL_RULES))}, got {channels!r}")

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or factory.__name__
        if key in _BLOCKS and _BLOCKS[key].factory is not factory:
            raise ConvforgeError(f"a spec block named {key!r} is already registered")
        many = channels in ("sum", "list") if many_inputs is None else bool(many_inputs)
        _BLOCKS[key] = BlockInfo(key, factory, channels, tuple(scaled), many)
        return factory

    return decorator


def list_blocks() -> list[str]:
    """The names of the registered spec blocks, sorted."""
    return sorted(_BLOCKS)


def get_block(name: str) -> BlockInfo | None:
    """The block registered under ``name``, or None."""
    return _BLOCKS.get(name)
