"""How a module was built: its registered name, that name's settings, and the structure pruning changed.

:func:`convforge.create_model` and the run loader attach an :class:`Origin` to every model they
build, so a transform such as pruning can record the model by name, and training it writes
a run that builds it again in a fresh process. A network built from a spec file carries the
spec itself, so its runs and checkpoints rebuild it without reading any file they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ATTRIBUTE = "convforge_origin"


@dataclass(frozen=True)
class Origin:
    """A registered ``model`` name, its ``model_kwargs``, the ``structure`` (shapes, attributes) it changed, and
    for a spec file's network the ``spec`` mapping it was built from."""

    model: str
    model_kwargs: dict[str, Any]
    structure: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] | None = None

    def with_structure(self, structure: dict[str, Any]) -> Origin:
        """The same origin with another pruned ``structure``."""
        return Origin(self.model, dict(self.model_kwargs), structure, self.spec)

    def record(self) -> dict[str, Any]:
        """What a run's configuration and checkpoints record of the model: ``model``, ``model_kwargs`` and, for a
        spec file's network, the ``spec`` itself."""
        return {"model": self.model, "model_kwargs": dict(self.model_kwargs),
                **({"spec": self.spec} if self.spec is not None else {})}  # fmt: skip


def set_origin(module: Any, origin: Origin) -> Any:
    """Attach ``origin`` to ``module``; returns the module."""
    object.__setattr__(module, ATTRIBUTE, origin)
    return module


def origin_of(module: Any) -> Origin | None:
    """The :class:`Origin` attached to ``module``, if any."""
    origin = getattr(module, ATTRIBUTE, None)
    return origin if isinstance(origin, Origin) else None
