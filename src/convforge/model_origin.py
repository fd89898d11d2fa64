"""How a module was built: its registered name, that name's settings, and the structure pruning changed.

:func:`convforge.create_model` and the run loader attach an :class:`Origin` to every model they
build, so a transform such as pruning can record the model by name, and training it writes
a run that builds it again in a fresh process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ATTRIBUTE = "convforge_origin"


@dataclass(frozen=True)
class Origin:
    """A registered ``model`` name, its ``model_kwargs``, and the ``structure`` (shapes, attributes) it changed."""

    model: str
    model_kwargs: dict[str, Any]
    structure: dict[str, Any] = field(default_factory=dict)


def set_origin(module: Any, origin: Origin) -> Any:
    """Attach ``origin`` to ``module``; returns the module."""
    object.__setattr__(module, ATTRIBUTE, origin)
    return module


def origin_of(module: Any) -> Origin | None:
    """The :class:`Origin` attached to ``module``, if any."""
    origin = getattr(module, ATTRIBUTE, None)
    return origin if isinstance(origin, Origin) else None
