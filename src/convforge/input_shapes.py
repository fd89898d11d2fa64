"""Per-sample input shapes: one tensor's ``(C, H, W)``, or one shape per input stream for models of several inputs.

An image model takes one input, ``(3, 224, 224)``. A model of several streams (MM-Pyramid's audio,
2-D and 3-D visual features) takes one positional input per stream, and its size is a tuple of
shapes: ``((10, 128), (80, 2048), (10, 512))``. On the command line the shapes are written
``10x128,80x2048,10x512``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from convforge.field_checks import MAX_INPUT_ELEMENTS

MAX_STREAMS = 8  # input streams a model may take


def is_multi_input(size: Any) -> bool:
    """Whether ``size`` is a shape per input stream rather than one shape."""
    return isinstance(size, (tuple, list)) and bool(size) and all(isinstance(s, (tuple, list)) for s in size)


def as_shapes(size: Sequence[Any]) -> tuple[tuple[int, ...], ...]:
    """``size`` as a tuple of shapes: one shape for a single-input model."""
    return tuple(tuple(s) for s in size) if is_multi_input(size) else (tuple(size),)


def shape_text(size: Sequence[Any]) -> str:
    """``3x224x224``, or ``10x128, 80x2048`` for a model of several inputs."""
    return ", ".join("x".join(map(str, shape)) for shape in as_shapes(size))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def valid_shapes(size: Any) -> bool:
    """Whether ``size`` is a shape, or up to :data:`MAX_STREAMS` shapes, of 1 to 5 positive integers each, with at
    most :data:`~convforge.field_checks.MAX_INPUT_ELEMENTS` values a sample in all."""
    if not isinstance(size, (tuple, list)) or not size:
        return False
    shapes = size if is_multi_input(size) else [size]
    return (
        len(shapes) <= MAX_STREAMS
        and all(isinstance(s, (tuple, list)) and 1 <= len(s) <= 5 and all(map(_positive_int, s)) for s in shapes)
        and sum(math.prod(s) for s in shapes) <= MAX_INPUT_ELEMENTS
    )


def to_record(size: Sequence[Any]) -> list[Any]:
    """``size`` as a run records it in YAML or JSON: a list of ints, or a list of such lists."""
    return [list(s) for s in size] if is_multi_input(size) else list(size)


def from_record(size: Sequence[Any]) -> tuple[Any, ...]:
    """A recorded size back as the tuple :func:`convforge.profile` takes."""
    return tuple(tuple(s) for s in size) if is_multi_input(size) else tuple(size)
