"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

import math
from typing import Any

from convforge.errors import ConvforgeError
from convforge.field_checks import MAX_INPUT_ELEMENTS
from convforge.input_shapes import valid_shapes
from convforge.overrides import parse_overrides

__all__ = ["existing_folder", "parse_count", "parse_input_size", "parse_overrides"]

_PREFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_count(text: str, option: str = "") -> int:
    """Parse a count such as ``20M``, ``1.5G``, ``300k`` or ``250000`` into an int."""
    cleaned = text.strip().replace(",", "").replace("_", "").lower()
    prefix = cleaned[-1] if cleaned and cleaned[-1] in "kmgt" else ""
    try:
        value = float(cleaned[: len(cleaned) - len(prefix)]) * _PREFIXES[prefix]
    except ValueError:
        value = -1
    if not math.isfinite(value) or round(value) < 1:
        raise ConvforgeError(f"{option + ' ' if option else ''}{text!r} is not a positive count; write e.g. 20M, "
                             "1.5G, 300k or 250000")  # fmt: skip
    return int(round(value))


def existing_folder(text: str) -> str:
    """``--data-root``: a folder that exists (a typo must not send convforge looking for the data elsewhere)."""
    from pathlib import Path

    if not Path(text).is_dir():
        what = "is a file, not a folder" if Path(text).exists() else "does not exist"
        raise ConvforgeError(f"--data-root {text} {what}; name the folder holding the dataset, or leave the option "
                             "out to search $CONVFORGE_DATA and the usual places")  # fmt: skip
    return text


def parse_input_size(text: str) -> tuple[Any, ...]:
    """Parse ``CxHxW`` (or ``CxDxHxW``) into a tuple of positive ints; shapes separated by commas, one per input
    stream (``10x128,80x2048,10x512``), into a tuple of such tuples."""
    parts = [p.strip() for p in text.lower().replace("×", "x").split(",")]
    try:
        shapes = [tuple(int(n) for n in part.split("x")) for part in parts]
    except ValueError:
        shapes = []
    several = len(shapes) > 1
    if shapes and all(shapes) and sum(math.prod(s) for s in shapes) > MAX_INPUT_ELEMENTS:
        raise ConvforgeError(f"--input {text!r} has {sum(math.prod(s) for s in shapes):,} values per example, more "
                             f"than the {MAX_INPUT_ELEMENTS:,} convforge profiles (3x8192x8192 fits)")  # fmt: skip
    candidate = tuple(shapes) if several else (shapes[0] if shapes else ())
    if not valid_shapes(candidate) or (not several and len(candidate) < 3):
        raise ConvforgeError(
            f"--input {text!r} is not a valid input size; give channels x height x width as positive integers, "
            "for example 3x224x224 (or CxDxHxW for 3-D inputs), or one shape per input stream separated by commas, "
            "for example 10x128,80x2048,10x512"
        )
    return tuple(shapes) if several else shapes[0]
