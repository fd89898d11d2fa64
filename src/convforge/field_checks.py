"""Checks of recipe fields, shared by the recipe and every task's settings: a bad value is one sentence naming
the field, the value and what is allowed."""

from __future__ import annotations

import math
from typing import Any

from convforge.errors import InvalidValueError


def rejected(name: str, value: Any, allowed: str) -> InvalidValueError:
    """The error for recipe field ``name`` holding ``value``."""
    return InvalidValueError(f"recipe field {name} = {value!r} is not allowed; {allowed}")


def is_number(value: Any) -> bool:
    """A finite int or float of sensible size (bools are not numbers here)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and abs(value) <= 1e30)  # fmt: skip


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_numbers(owner: Any, *names: str) -> None:
    """Each field is a finite number (None is left to the caller)."""
    for name in names:
        value = getattr(owner, name)
        if value is not None and not is_number(value):
            raise rejected(name, value, "use a finite number of sensible size (at most 1e30)")


def check_ints(owner: Any, *names: str, minimum: int = 1) -> None:
    """Each field is an integer of at least ``minimum``."""
    allowed = "use a positive integer" if minimum == 1 else f"use an integer >= {minimum}"
    for name in names:
        value = getattr(owner, name)
        if not is_int(value) or value < minimum:
            raise rejected(name, value, allowed)


def check_bools(owner: Any, *names: str) -> None:
    """Each field is true or false."""
    for name in names:
        if not isinstance(getattr(owner, name), bool):
            raise rejected(name, getattr(owner, name), "use true or false")


MAX_INPUT_ELEMENTS = 3 * 8192 * 8192  # values in one input sample: 0.75 GiB of FP32, before any activation
MAX_IMAGE_SIZE = 8192  # the largest side of an input image (3x8192x8192 is 0.75 GiB of FP32, before activations)


def check_image_size(owner: Any, name: str = "image_size") -> None:
    """The field is an image side from 1 to :data:`MAX_IMAGE_SIZE` pixels."""
    value = getattr(owner, name)
    if not is_int(value) or not 1 <= value <= MAX_IMAGE_SIZE:
        raise rejected(name, value, f"use an integer from 1 to {MAX_IMAGE_SIZE} (pixels)")


def check_range(owner: Any, name: str, low: float, high: float, high_inclusive: bool = True) -> None:
    """The number field lies in [low, high] (or [low, high))."""
    value = getattr(owner, name)
    inside = is_number(value) and (low <= value <= high if high_inclusive else low <= value < high)
    if not inside:
        raise rejected(name, value, f"use a number in [{low:g}, {high:g}{']' if high_inclusive else ')'}")


def check_path_component(field: str, value: Any) -> str:
    """``value`` as a single file or folder name (no separators, not ``.`` or ``..``, no control characters), so
    that what it names stays inside the folder the user chose; anything else is refused naming ``field``."""
    text = str(value) if value is not None else ""
    bad = (not text or text in (".", "..") or any(sep in text for sep in ("/", "\\")) or len(text) > 200
           or any(ord(c) < 32 for c in text))  # fmt: skip
    if bad:
        raise rejected(field, value, "use a plain name without folders, e.g. resnet20-long (it names a folder "
                                     "inside the project)")  # fmt: skip
    return text


def env_limit(variable: str, default: int) -> int:
    """A limit the user may raise through the environment variable ``variable`` (a number), else ``default``."""
    import os

    text = os.environ.get(variable, "")
    try:
        return int(float(text)) if text else default
    except ValueError:
        raise InvalidValueError(f"{variable} must be a number, got {text!r}") from None
