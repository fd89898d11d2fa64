"""Reading a YAML file (or taking an already-loaded mapping) as a dict, with one clear error when it cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convforge.errors import ConvforgeError


def read_mapping(source: str | Path | dict[str, Any], what: str,
                 error: type[ConvforgeError] = ConvforgeError) -> dict[str, Any]:  # fmt: skip
    """A copy of ``source`` if it is a dict, else the YAML file it names loaded; ``error`` names ``what`` it was."""
    if isinstance(source, dict):
        return dict(source)
    import yaml

    try:
        values = yaml.safe_load(Path(source).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise error(f"could not read the {what} {source}: {err}") from err
    if not isinstance(values, dict):
        raise error(f"the {what} {source} must be a mapping of field: value")
    return values
