"""Search spaces: a network skeleton whose settings are choices, declared in YAML, sampled into specs.

A space::

    name: fashion-small
    in_channels: 1
    input_size: [1, 28, 28]
    num_classes: 10
    stem: [16, 24, 32]                   # output channels of the 3×3 stem (a list is a choice)
    stages:                              # each a strided transition, then residual branches
      - width: [16, 24, 32]
        depth: [0, 1, 2]                 # residual branches after the transition
        kernel: [3, 5]
        expansion: [1, 3, 6]             # hidden width of inverted bottlenecks, × width
        block: [ib, ib_se, repvgg, conv] # branch type (all: convforge.nn.search_stage.BRANCHES)
        layout: [sequential, parallel]   # deep or shallow residual layout
        stride: 2                        # a single value is fixed
    head: [0, 128]                       # 1×1 conv channels before pooling (0: none)

Every architecture a space describes is a spec (:mod:`convforge.spec`): rows of a
``Conv`` stem, one ``Stage`` per stage, an optional ``Conv`` head and ``Classify``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from convforge.errors import ConvforgeError
from convforge.mapping_file import read_mapping
from convforge.nn.search_stage import BRANCHES, LAYOUTS

STAGE_FIELDS = {"width": int, "depth": int, "kernel": int, "expansion": int, "block": str, "layout": str,
                "stride": int}  # fmt: skip
ALLOWED = {"block": BRANCHES, "layout": LAYOUTS}
STAGE_DEFAULTS = {"depth": 1, "kernel": 3, "expansion": 1, "block": "ib", "layout": "sequential", "stride": 2}


class SpaceError(ConvforgeError):
    """A search space that cannot be used; the message names the field."""


class Suggester(Protocol):
    """What a space needs to pick its choices: Optuna's ``Trial`` has it."""

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...


def _choices(where: str, value: Any, kind: type, allowed: tuple[str, ...] | None = None,
             minimum: int = 0) -> list[Any]:  # fmt: skip
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SpaceError(f"{where}: an empty list of choices")
    for v in values:
        if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v < minimum):
            raise SpaceError(f"{where}: {v!r} is not an integer >= {minimum}")
        if kind is str and (not isinstance(v, str) or (allowed and v not in allowed)):
            raise SpaceError(f"{where}: {v!r} is not one of {', '.join(allowed or ())}")
    if len(set(map(str, values))) != len(values):
        raise SpaceError(f"{where}: the choices {values} repeat a value")
    return values


@dataclass
class SearchSpace:
    """A validated space: the choices of every setting, by name (``stem``, ``stage0.width``, ..., ``head``)."""

    name: str
    in_channels: int
    num_classes: int
    input_size: list[int]
    choices: dict[str, list[Any]] = field(default_factory=dict)
    stage_count: int = 0

    @classmethod
    def load(cls, source: str | Path | dict[str, Any]) -> SearchSpace:
        """A space from a YAML file or a mapping; an error names the field and what is allowed."""
        values = read_mapping(source, "search space", SpaceError)
        known = {"name", "in_channels", "num_classes", "input_size", "stem", "stages", "head"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpaceError(f"unknown field(s) {', '.join(unknown)}; a space has {', '.join(sorted(known))}")
        stages = values.get("stages")
        if not isinstance(stages, list) or not stages:
            raise SpaceError("stages: a non-empty list of stages, each a mapping of width, depth, kernel, ...")
        in_channels = values.get("in_channels", 3)
        size = values.get("input_size") or [in_channels, 32, 32]
        if not (isinstance(size, list) and len(size) == 3 and all(isinstance(s, int) and s > 0 for s in size)):
            raise SpaceError(f"input_size: use [channels, height, width], got {size!r}")
        choices = {"stem": _choices("stem", values.get("stem", 16), int, minimum=1)}
        for i, stage in enumerate(stages):
            if not isinstance(stage, dict) or "width" not in stage:
                raise SpaceError(f"stages[{i}]: a mapping with at least a width, got {stage!r}")
            extra = sorted(set(stage) - set(STAGE_FIELDS))
            if extra:
                raise SpaceError(f"stages[{i}]: unknown field(s) {', '.join(extra)}; use {', '.join(STAGE_FIELDS)}")
            for name, kind in STAGE_FIELDS.items():
                value = stage.get(name, STAGE_DEFAULTS.get(name))
                minimum = 0 if name == "depth" else 1
                choices[f"stage{i}.{name}"] = _choices(f"stages[{i}].{name}", value, kind, ALLOWED.get(name), minimum)
            if any(k % 2 == 0 for k in choices[f"stage{i}.kernel"]):
                raise SpaceError(f"stages[{i}].kernel: use odd kernel sizes, got {choices[f'stage{i}.kernel']}")
        choices["head"] = _choices("head", values.get("head", 0), int)
        return cls(str(values.get("name", "space")), int(in_channels), int(values.get("num_classes", 10)),
                   list(size), choices, len(stages))  # fmt: skip

    @property
    def size(self) -> int:
        """How many architectures the space holds."""
        total = 1
        for options in self.choices.values():
            total *= len(options)
        return total

    def sample(self, trial: Suggester) -> dict[str, Any]:
        """One architecture: a value for every setting, chosen by ``trial``."""
        return {name: (options[0] if len(options) == 1 else trial.suggest_categorical(name, options))
                for name, options in self.choices.items()}  # fmt: skip

    def contains(self, architecture: dict[str, Any]) -> bool:
        """Whether every setting of ``architecture`` is one of the space's choices."""
        return set(architecture) == set(self.choices) and all(
            architecture[name] in options for name, options in self.choices.items()
        )

    def to_spec(self, architecture: dict[str, Any]) -> dict[str, Any]:
        """The spec (a mapping that :func:`convforge.spec.build_spec` and ``convforge train`` take) of one choice."""
        if not self.contains(architecture):
            raise SpaceError(f"the architecture {architecture} is not in the space {self.name!r}")
        layers: list[list[Any]] = [[-1, 1, "Conv", [architecture["stem"], 3, 1]]]
        for i in range(self.stage_count):
            a = {name: architecture[f"stage{i}.{name}"] for name in STAGE_FIELDS}
            layers.append([-1, 1, "Stage", [a["width"], a["depth"], a["kernel"], a["expansion"], a["block"],
                                            a["layout"], a["stride"]]])  # fmt: skip
        if architecture["head"]:
            layers.append([-1, 1, "Conv", [architecture["head"], 1, 1]])
        layers.append([-1, 1, "Classify", ["num_classes"]])
        return {"in_channels": self.in_channels, "num_classes": self.num_classes, "input_size": self.input_size,
                "task": "classify", "layers": layers}  # fmt: skip
