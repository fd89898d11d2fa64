"""Declarative networks: a list of rows ``[from, repeats, block, args]``, in YAML or Python.

A spec is a mapping::

    in_channels: 3
    width: 0.5          # channel multiplier for blocks whose first argument is their output channels
    depth: 0.33         # repeats multiplier (a row with repeats > 1 keeps at least 1)
    max_channels: 1024  # channel cap, applied before the width multiplier
    divisor: 8          # scaled channels are rounded to a multiple of this
    num_classes: 10     # optional: replaces the argument "num_classes" in any row
    input_size: [3, 32, 32]   # optional: the input a profile or training uses by default
    layers:
      - [-1, 1, Conv, [64, 3, 2]]             # row 0: from the input (-1 = previous row)
      - [-1, 2, Conv, [128, 3, 1], p2]        # a fifth field names the row's output
      - [[-1, 0], 1, Concat, []]              # several inputs
      - [-1, 1, Conv, [128, 3, 2], p3]
      - [[p2, p3], 1, BiFPN, [64], [n2, n3]]  # a block of several outputs names each of them
    outputs: [n2, n3]                         # names or row indices (default: the last row)

``from`` is a row index, negative for relative to the current row, a name, or a list of them.
A row of several outputs (a neck, registered with ``channels="list"``) passes all of them
when read by its index, and one of them when read by the name of that output;
``repeats`` stacks the block that many times (scaled by ``depth``); ``block`` is a name
registered with :func:`register_block`, which any user module can extend. Every error
names the row and the field.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convforge.errors import ConvforgeError
from convforge.field_checks import MAX_INPUT_ELEMENTS, env_limit
from convforge.mapping_file import read_mapping
from convforge.spec.block_registry import get_block, list_blocks
from convforge.task_names import current_task_name


class SpecError(ConvforgeError):
    """A spec that cannot be built; the message names the row and the field."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded up to a multiple of ``divisor`` (at least ``divisor``)."""
    return max(divisor, int(math.ceil(value / divisor) * divisor))


@dataclass
class Spec:
    """A parsed spec: the rows and the scaling rules."""

    layers: list[list[Any]]
    in_channels: int = 3
    width: float = 1.0
    depth: float = 1.0
    max_channels: int = 1 << 30
    divisor: int = 8
    outputs: list[int | str] = field(default_factory=list)
    num_classes: int = 0
    input_size: list[int] = field(default_factory=list)
    task: str = "classify"

    @classmethod
    def load(cls, source: str | Path | dict[str, Any]) -> Spec:
        """A spec from a YAML file or an already-loaded mapping."""
        values = read_mapping(source, "spec", SpecError)
        if "layers" not in values:
            raise SpecError("a spec is a mapping with a 'layers' list of rows [from, repeats, block, args]")
        known = {
            "layers",
            "in_channels",
            "width",
            "depth",
            "max_channels",
            "divisor",
            "outputs",
            "num_classes",
            "input_size",
            "task",
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"unknown spec field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}")
        if "task" in values:
            values["task"] = current_task_name(values["task"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain mapping, which :meth:`load` reads back (runs and checkpoints store it)."""
        return asdict(self)


MAX_ROWS = 10_000
MAX_REPEATS = 1_000  # blocks one row may stack, after the depth multiplier
MAX_BLOCKS = 10_000  # blocks in the whole network, after the depth multiplier
MAX_MULTIPLIER = 100.0  # the largest width or depth multiplier
MAX_CHANNELS = 65_536
DEFAULT_MAX_PARAMETERS = 1_000_000_000  # 4 GB of FP32 weights


def max_spec_parameters() -> int:
    """The most parameters a spec may build: ``CONVFORGE_MAX_PARAMETERS``, else 1 billion."""
    return env_limit("CONVFORGE_MAX_PARAMETERS", DEFAULT_MAX_PARAMETERS)


class SpecModel(nn.Module):
    """The network a spec describes: its rows run in order, each reading the outputs it names."""

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        self.spec = spec
        self.rows = nn.ModuleList()
        self.sources: list[list[Ref]] = []
        self.names: dict[str, Ref] = {}
        self.parameter_count = 0  # of the rows built so far
        channels: list[int | list[int]] = []
        _check_fields(spec)
        if not isinstance(spec.layers, list) or not spec.layers:
            raise SpecError("layers must be a non-empty list of rows [from, repeats, block, args]")
        if len(spec.layers) > MAX_ROWS:
            raise SpecError(f"a spec may have at most {MAX_ROWS} rows, this one has {len(spec.layers)}")
        planned = sum(_blocks(row, spec.depth) for row in spec.layers)
        if planned > MAX_BLOCKS:
            raise SpecError(f"the spec stacks {planned:,} blocks (repeats × depth over all rows), more than the "
                            f"{MAX_BLOCKS:,} a spec may build")  # fmt: skip
        for index, row in enumerate(spec.layers):
            module, sources, out_channels = self._build_row(index, row, channels)
            self.rows.append(module)
            self.sources.append(sources)
            channels.append(out_channels)
        self.channels = channels
        self.multi_output = {i for i, c in enumerate(channels) if isinstance(c, list)}  # rows of several outputs
        self.outputs = [self._resolve_output(o, len(channels)) for o in (spec.outputs or [-1])]
        # outputs read later by a row other than the next one, or returned, are kept during the forward pass
        self.keep = ({row for i, sources in enumerate(self.sources) for row, _ in sources if row != i - 1}
                     | {row for row, _ in self.outputs})  # fmt: skip

    def _build_row(self, index: int, row: Any, channels: list[int | list[int]]) -> tuple[nn.Module, list[Ref],
                                                                                         int | list[int]]:  # fmt: skip
        def fail(field_name: str, message: str) -> SpecError:
            shown = repr(row)
            shown = shown if len(shown) <= 200 else shown[:200] + " …"
            return SpecError(f"row {index} ({field_name}): {message}; the row is {shown}")

        if not isinstance(row, (list, tuple)) or len(row) not in (4, 5):
            raise fail("row", "a row is [from, repeats, block, args] with an optional name")
        source, repeats, block, args = row[:4]
        names = row[4] if len(row) == 5 else None
        given = names if isinstance(names, list) else [names] if len(row) == 5 else []
        if len(row) == 5 and (not given or not all(isinstance(n, str) and n for n in given)
                              or len(set(given)) < len(given)):  # fmt: skip
            raise fail("name", f"a name is a string, or a list of different strings, one per output of a block of "
                               f"several outputs; got {names!r}")  # fmt: skip
        taken = [n for n in given if n in self.names]
        if taken:
            raise fail("name", f"{taken[0]!r} already names an earlier row or output")
        sources_given = source if isinstance(source, list) else [source]
        sources: list[Ref] = []
        for s in sources_given:
            if isinstance(s, str):
                if s not in self.names:
                    raise fail("from", f"no earlier row or output is named {s!r}; named so far: "
                                       f"{', '.join(self.names) or 'none'}")  # fmt: skip
                sources.append(self.names[s])
                continue
            if isinstance(s, bool) or not isinstance(s, int):
                raise fail("from", f"use a row index, a name, or a list of them, got {s!r}")
            absolute = index + s if s < 0 else s
            if s < 0 and index == 0 and s == -1:
                absolute = -1  # the network's input
            elif not 0 <= absolute < index:
                raise fail("from", f"{s} does not name an earlier row (rows 0 to {index - 1}, or -1 for the previous)")
            sources.append((absolute, None))
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise fail("repeats", f"use a positive integer, got {repeats!r}")
        if repeats * max(self.spec.depth, 1) > MAX_REPEATS:
            raise fail("repeats", f"{repeats} (× depth {self.spec.depth}) is more than the {MAX_REPEATS} a row may "
                                  "stack")  # fmt: skip
        info = get_block(block) if isinstance(block, str) else None
        if info is None:
            raise fail("block", f"unknown block {block!r}; registered blocks: {', '.join(list_blocks())}")
        if not isinstance(args, list):
            raise fail("args", f"use a list, got {args!r}")
        args = [self.spec.num_classes if a == "num_classes" else a for a in args]
        for i, a in enumerate(args):
            if i in info.scaled and _is_int(a) and not 0 < a <= MAX_CHANNELS:
                raise fail("args", f"{a} channels: use 1 to {MAX_CHANNELS}")
        args = [self._scale(a) if i in info.scaled and _is_int(a) else a for i, a in enumerate(args)]
        inputs = _flatten([self.spec.in_channels if r == -1 else channels[r] if p is None else channels[r][p]
                           for r, p in sources])  # fmt: skip
        count = max(round(repeats * self.spec.depth), 1) if repeats > 1 else 1
        if len(inputs) > 1 and not info.many_inputs:
            raise fail("from", f"{block} reads one input, got {len(inputs)}"
                               + (" (a row of several outputs read by its index passes all of them; read one by "
                                  "its name)" if any(p is None and r >= 0 and isinstance(channels[r], list)
                                                    for r, p in sources) else ""))  # fmt: skip

        def make() -> tuple[list[nn.Module], int | list[int]]:
            if info.channels == "list":  # a block of several outputs: each copy reads the previous one's outputs
                layers, c_in = [], list(inputs)
                for _ in range(count):
                    layers.append(info.factory(c_in, *args))
                    c_in = getattr(layers[-1], "out_channels", None)
                    if not isinstance(c_in, (list, tuple)) or not all(_is_int(c) and c > 0 for c in c_in):
                        raise fail("block", f"{block} is registered with several outputs (channels='list'), so "
                                            f"its module must list their channels in out_channels; it has "
                                            f"{c_in!r}")  # fmt: skip
                    c_in = list(c_in)
                return layers, c_in
            if info.channels in ("out", "fixed"):
                if not args or not _is_int(args[0]):
                    raise fail("args", "the first argument of this block is its output channel count")
                if not 0 < args[0] <= MAX_CHANNELS:
                    raise fail("args", f"{args[0]} output channels: use 1 to {MAX_CHANNELS}")
                c_out = self._scale(args[0]) if info.channels == "out" else args[0]
                if not 0 < c_out <= MAX_CHANNELS:
                    raise fail("args", f"{c_out} output channels: use 1 to {MAX_CHANNELS}")
                return [info.factory(inputs[0] if i == 0 else c_out, c_out, *args[1:]) for i in range(count)], c_out
            c_in: Any = inputs if len(inputs) > 1 else inputs[0]
            return [info.factory(c_in, *args) for _ in range(count)], (sum(inputs) if info.channels == "sum"
                                                                       else inputs[0])  # fmt: skip

        try:
            with torch.device("meta"), warnings.catch_warnings():  # count the parameters before spending memory
                warnings.simplefilter("ignore")
                planned, _ = make()
            weights = [p.numel() for layer in planned for p in layer.parameters()]
            self.parameter_count += sum(weights)
        except SpecError:
            raise
        except Exception:  # noqa: BLE001 - a block that cannot be built on the meta device is built for real below
            pass
        else:
            if 0 in weights:
                raise fail("args", f"{block}{tuple(args)} would hold an empty weight tensor: a size of 0 in its "
                                   "arguments")  # fmt: skip
        limit = max_spec_parameters()
        if self.parameter_count > limit:
            raise fail("args", f"the network would hold {self.parameter_count:,} parameters by this row, more than "
                               f"the limit of {limit:,} (set CONVFORGE_MAX_PARAMETERS to raise it)")  # fmt: skip
        try:
            layers, out_channels = make()
        except SpecError:
            raise
        except (TypeError, ValueError, RuntimeError) as err:
            raise fail("args", f"{block}{tuple(args)} could not be built: {err}") from err
        parts = len(out_channels) if isinstance(out_channels, list) else 1
        if isinstance(names, list) and len(given) != parts:
            raise fail("name", f"{len(given)} names for a block of {parts} output(s); a single string names the "
                               f"whole row")  # fmt: skip
        for part, name in enumerate(given):
            self.names[name] = (index, part if parts > 1 and isinstance(names, list) else None)
        return (layers[0] if count == 1 else nn.Sequential(*layers)), sources, out_channels

    def _scale(self, channels: int) -> int:
        """Channels after the width rules: capped at max_channels, times width, rounded up to the divisor."""
        return make_divisible(min(channels, self.spec.max_channels) * self.spec.width, self.spec.divisor)

    def _resolve_output(self, output: int | str, rows: int) -> Ref:
        if isinstance(output, str):
            if output not in self.names:
                raise SpecError(f"outputs: no row or output is named {output!r}; named: "
                                f"{', '.join(self.names) or 'none'}")  # fmt: skip
            return self.names[output]
        if isinstance(output, bool) or not isinstance(output, int) or not -rows <= output < rows:
            raise SpecError(f"outputs: {output!r} is not a row index or name (there are {rows} rows)")
        return output % rows, None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        saved: dict[int, Any] = {-1: x}
        h: Any = x
        for index, (row, sources) in enumerate(zip(self.rows, self.sources)):
            inputs = self._gather(sources, saved, h, index - 1)
            h = row(inputs if len(inputs) > 1 else inputs[0])
            if index in self.keep:
                saved[index] = h
        results = self._gather(self.outputs, saved)
        return results[0] if len(results) == 1 else tuple(results)

    def _gather(self, refs: list[Ref], saved: dict[int, Any], last: Any = None, last_row: int = -2) -> list[Any]:
        """The tensors ``refs`` name, from ``saved`` or ``last`` (the output of ``last_row``): a row of several
        outputs read whole gives all of them, in order."""
        gathered = []
        for row, part in refs:
            out = last if row == last_row else saved[row]
            if part is not None:
                gathered.append(out[part])
            elif row in self.multi_output:
                gathered.extend(out)
            else:
                gathered.append(out)
        return gathered


Ref = tuple[int, int | None]  # a row (-1: the network's input) and one of its outputs (None: all of them)


def _flatten(values: list[Any]) -> list[Any]:
    """Channel counts, with those of a row of several outputs (a list) spread in place."""
    return [v for value in values for v in (value if isinstance(value, list) else [value])]


SPEC_SUFFIXES = (".yaml", ".yml")
OVERRIDES = {"in_chans": "in_channels", "num_classes": "num_classes", "width": "width", "depth": "depth"}


def is_spec_path(name: str | Path) -> bool:
    """Whether a model name is a spec file (ends in .yaml or .yml)."""
    return str(name).lower().endswith(SPEC_SUFFIXES)


def build_spec(source: str | Path | dict[str, Any] | Spec, **overrides: Any) -> SpecModel:
    """The network of a spec file, mapping or :class:`Spec`.

    ``overrides`` replace spec fields: ``in_chans``, ``num_classes``, ``width``, ``depth``.
    A :class:`Spec` passed in is left as it was.
    """
    spec = source if isinstance(source, Spec) else Spec.load(source)
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise SpecError(f"a spec takes the overrides {', '.join(OVERRIDES)}, not {', '.join(unknown)}")
    changes = {OVERRIDES[key]: value for key, value in overrides.items()}
    if "in_chans" in overrides and spec.input_size:
        changes["input_size"] = [overrides["in_chans"], *spec.input_size[1:]]
    return SpecModel(replace(spec, **changes))


def _blocks(row: Any, depth: float) -> int:
    """The blocks a row stacks after the depth multiplier (0 for a malformed row, which its build names)."""
    repeats = row[1] if isinstance(row, (list, tuple)) and len(row) >= 2 else None
    if not _is_int(repeats) or not 1 <= repeats * max(depth, 1) <= MAX_REPEATS:
        return 0  # a malformed row, or one over the per-row cap: its own check names it
    return max(round(repeats * depth), 1) if repeats > 1 else 1


def _check_fields(spec: Spec) -> None:
    """The spec's scalar fields, each within its range, before any row is built."""

    def bad(name: str, allowed: str) -> SpecError:
        return SpecError(f"{name} = {getattr(spec, name)!r} is not allowed; {allowed}")

    for name, low, high in (("in_channels", 1, MAX_CHANNELS), ("divisor", 1, MAX_CHANNELS),
                            ("max_channels", 1, 1 << 30), ("num_classes", 0, MAX_CHANNELS * 16)):  # fmt: skip
        value = getattr(spec, name)
        if not _is_int(value) or not low <= value <= high:
            raise bad(name, f"use an integer from {low} to {high:,}")
    for name in ("width", "depth"):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_MULTIPLIER:
            raise bad(name, f"use a number above 0 and at most {MAX_MULTIPLIER:g} (write 1e3 as 1.0e+3 in YAML)")
    size = spec.input_size
    if size:
        if (
            not isinstance(size, (list, tuple))
            or len(size) not in (3, 4)
            or not all(_is_int(s) and s > 0 for s in size)
        ):
            raise bad("input_size", "use [channels, height, width] as positive integers")
        if math.prod(size) > MAX_INPUT_ELEMENTS:
            raise bad("input_size", f"use at most {MAX_INPUT_ELEMENTS:,} values a sample (3x8192x8192)")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
