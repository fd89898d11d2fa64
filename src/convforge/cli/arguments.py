"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

from convforge.errors import ConvforgeError


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


def parse_overrides(pairs: list[str] | None) -> dict[str, object]:
    """Parse ``key=value`` model overrides; values are read as int, float or bool when they look like one."""
    overrides: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConvforgeError(f"model override {pair!r} is not of the form key=value, e.g. num_classes=100")
        overrides[key] = _scalar(value)
    return overrides


def _scalar(value: str) -> object:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
