"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

from convforge.errors import ConvforgeError
from convforge.overrides import parse_overrides

__all__ = ["parse_input_size", "parse_overrides"]


def parse_input_size(text: str) -> tuple[int, ...]:
    """Parse ``CxHxW`` (or ``CxDxHxW``) into a tuple of positive ints."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) not in (3, 4) or any(s < 1 for s in size):
        raise ConvforgeError(
            f"--input {text!r} is not a valid input size; give channels x height x width as positive integers, "
            "for example 3x224x224 (or CxDxHxW for 3-D inputs)"
        )
    return size
