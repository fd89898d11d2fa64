"""``key=value`` overrides, as written on a command line or in a model spec."""

from __future__ import annotations

from convforge.errors import ConvforgeError


def parse_overrides(pairs: list[str] | None) -> dict[str, object]:
    """Parse ``key=value`` model overrides; values are read as int, float or bool when they look like one,
    and ``[a,b,…]`` as a list of such values."""
    overrides: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConvforgeError(f"model override {pair!r} is not of the form key=value, e.g. num_classes=100")
        overrides[key] = _scalar(value)
    return overrides


def _scalar(value: str) -> object:
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1].strip()
        return [_scalar(item.strip()) for item in inner.split(",")] if inner else []
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
