"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

import math

from convforge.errors import ConvforgeError
from convforge.field_checks import MAX_INPUT_ELEMENTS
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
    if math.prod(size) > MAX_INPUT_ELEMENTS:
        raise ConvforgeError(f"--input {text!r} has {math.prod(size):,} values per example, more than the "
                             f"{MAX_INPUT_ELEMENTS:,} convforge profiles (3x8192x8192 fits)")  # fmt: skip
    return size
