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
    outputs: [p2, -1]                         # names or row indices (default: the last row)

``from`` is a row index, negative for relative to the current row, or a list of them;
``repeats`` stacks the block that many times (scaled by ``depth``); ``block`` is a name
registered with :func:`register_block`, which any user module can extend. Every error
names the row and the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convforge.errors import ConvforgeError
from convforge.mapping_file import read_mapping


class SpecError(ConvforgeError):
    """A spec that cannot be built; the message names the row and the field."""


@dataclass(frozen=True)
class BlockInfo:
    """A registered block: how to build it and how its output channels follow from its inputs and arguments."""

    name: str
    factory: Callable[..., nn.Module]
    channels: str  # "out": args[0] is the output channel count (scaled); "fixed": args[0], unscaled;
    # "same": as its input; "sum": of the inputs
    scaled: tuple[int, ...] = ()  # further argument positions that hold channel counts, scaled like args[0]


_BLOCKS: dict[str, BlockInfo] = {}


def register_block(
    name: str | None = None, channels: str = "out", scaled: tuple[int, ...] = ()
) -> Callable[[Callable[..., nn.Module]], Any]:
    """Register a block for specs, under ``name`` (default: the factory's name).

    The factory is called as ``factory(c_in, c_out, *args)`` for ``channels="out"``
    blocks (``c_out`` is the row's first argument after width scaling) and
    ``"fixed"`` ones (the first argument as it is, e.g. a class count), and as
    ``factory(c_in, *args)`` for ``"same"`` and ``"sum"`` blocks (``c_in`` is a list for
    several inputs). ``scaled`` lists further positions in a row's args that are channel
    counts (an expansion width, say): an integer there is scaled like the output
    channels; any other value (``None``) is passed as it is.
    """
    if channels not in ("out", "fixed", "same", "sum"):
        raise ConvforgeError(f"channels must be 'out', 'fixed', 'same' or 'sum', got {channels!r}")

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _load_builtin_blocks()  # so that a user block never silently takes a built-in name first
        key = name or factory.__name__
        if key in _BLOCKS and _BLOCKS[key].factory is not factory:
            raise ConvforgeError(f"a spec block named {key!r} is already registered")
        _BLOCKS[key] = BlockInfo(key, factory, channels, tuple(scaled))
        return factory

    return decorator


def list_blocks() -> list[str]:
    """The names of the registered spec blocks, sorted."""
    _load_builtin_blocks()
    return sorted(_BLOCKS)


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
    task: str = "classification"

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
        return cls(**values)


class SpecModel(nn.Module):
    """The network a spec describes: its rows run in order, each reading the outputs it names."""

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        _load_builtin_blocks()
        self.spec = spec
        self.rows = nn.ModuleList()
        self.sources: list[list[int]] = []
        self.names: dict[str, int] = {}
        channels: list[int] = []
        if not isinstance(spec.layers, list) or not spec.layers:
            raise SpecError("layers must be a non-empty list of rows [from, repeats, block, args]")
        for index, row in enumerate(spec.layers):
            module, sources, out_channels = self._build_row(index, row, channels)
            self.rows.append(module)
            self.sources.append(sources)
            channels.append(out_channels)
        self.channels = channels
        self.outputs = [self._resolve_output(o, len(channels)) for o in (spec.outputs or [-1])]
        # outputs read later by a row other than the next one, or returned, are kept during the forward pass
        self.keep = {s for i, sources in enumerate(self.sources) for s in sources if s != i - 1} | set(self.outputs)

    def _build_row(self, index: int, row: Any, channels: list[int]) -> tuple[nn.Module, list[int], int]:
        def fail(field_name: str, message: str) -> SpecError:
            return SpecError(f"row {index} ({field_name}): {message}; the row is {row!r}")

        if not isinstance(row, (list, tuple)) or len(row) not in (4, 5):
            raise fail("row", "a row is [from, repeats, block, args] with an optional name")
        source, repeats, block, args = row[:4]
        if len(row) == 5:
            if not isinstance(row[4], str) or row[4] in self.names:
                raise fail("name", f"a name must be a new string, got {row[4]!r}")
            self.names[row[4]] = index
        sources_given = source if isinstance(source, list) else [source]
        sources = []
        for s in sources_given:
            if isinstance(s, bool) or not isinstance(s, int):
                raise fail("from", f"use a row index or a list of them, got {s!r}")
            absolute = index + s if s < 0 else s
            if s < 0 and index == 0 and s == -1:
                absolute = -1  # the network's input
            elif not 0 <= absolute < index:
                raise fail("from", f"{s} does not name an earlier row (rows 0 to {index - 1}, or -1 for the previous)")
            sources.append(absolute)
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise fail("repeats", f"use a positive integer, got {repeats!r}")
        if block not in _BLOCKS:
            raise fail("block", f"unknown block {block!r}; registered blocks: {', '.join(sorted(_BLOCKS))}")
        if not isinstance(args, list):
            raise fail("args", f"use a list, got {args!r}")
        args = [self.spec.num_classes if a == "num_classes" else a for a in args]
        info = _BLOCKS[block]
        args = [self._scale(a) if i in info.scaled and _is_int(a) else a for i, a in enumerate(args)]
        inputs = [self.spec.in_channels if s == -1 else channels[s] for s in sources]
        count = max(round(repeats * self.spec.depth), 1) if repeats > 1 else 1
        try:
            if info.channels in ("out", "fixed"):
                if not args or not _is_int(args[0]):
                    raise fail("args", "the first argument of this block is its output channel count")
                if len(inputs) != 1:
                    raise fail("from", f"{block} reads one input, got {len(inputs)}")
                c_out = self._scale(args[0]) if info.channels == "out" else args[0]
                layers = [info.factory(inputs[0] if i == 0 else c_out, c_out, *args[1:]) for i in range(count)]
                out_channels = c_out
            else:
                c_in: Any = inputs if len(inputs) > 1 else inputs[0]
                layers = [info.factory(c_in, *args) for _ in range(count)]
                out_channels = sum(inputs) if info.channels == "sum" else inputs[0]
        except SpecError:
            raise
        except (TypeError, ValueError, RuntimeError) as err:
            raise fail("args", f"{block}{tuple(args)} could not be built: {err}") from None
        return (layers[0] if count == 1 else nn.Sequential(*layers)), sources, out_channels

    def _scale(self, channels: int) -> int:
        """Channels after the width rules: capped at max_channels, times width, rounded up to the divisor."""
        return make_divisible(min(channels, self.spec.max_channels) * self.spec.width, self.spec.divisor)

    def _resolve_output(self, output: int | str, rows: int) -> int:
        if isinstance(output, str):
            if output not in self.names:
                raise SpecError(f"outputs: no row is named {output!r}; named rows: {', '.join(self.names) or 'none'}")
            return self.names[output]
        if isinstance(output, bool) or not isinstance(output, int) or not -rows <= output < rows:
            raise SpecError(f"outputs: {output!r} is not a row index or name (there are {rows} rows)")
        return output % rows

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        saved: dict[int, torch.Tensor] = {-1: x}
        h = x
        for index, (row, sources) in enumerate(zip(self.rows, self.sources)):
            inputs = [h if s == index - 1 else saved[s] for s in sources]
            h = row(inputs if len(inputs) > 1 else inputs[0])
            if index in self.keep:
                saved[index] = h
        results = tuple(saved[o] for o in self.outputs)
        return results[0] if len(results) == 1 else results


SPEC_SUFFIXES = (".yaml", ".yml")
OVERRIDES = {"in_chans": "in_channels", "num_classes": "num_classes", "width": "width", "depth": "depth"}


def is_spec_path(name: str | Path) -> bool:
    """Whether a model name is a spec file (ends in .yaml or .yml)."""
    return str(name).lower().endswith(SPEC_SUFFIXES)


def build_spec(source: str | Path | dict[str, Any] | Spec, **overrides: Any) -> SpecModel:
    """The network of a spec file, mapping or :class:`Spec`.

    ``overrides`` replace spec fields: ``in_chans``, ``num_classes``, ``width``, ``depth``.
    """
    spec = source if isinstance(source, Spec) else Spec.load(source)
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise SpecError(f"a spec takes the overrides {', '.join(OVERRIDES)}, not {', '.join(unknown)}")
    for key, value in overrides.items():
        setattr(spec, OVERRIDES[key], value)
    if "in_chans" in overrides and spec.input_size:
        spec.input_size = [overrides["in_chans"], *spec.input_size[1:]]
    return SpecModel(spec)


# ---------------------------------------------------------------- built-in blocks

_builtins_loaded = False


def _load_builtin_blocks() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from convforge.nn.conv_norm_act import ConvNormAct
    from convforge.nn.detect_head import DetectHead
    from convforge.nn.inverted_bottleneck import InvertedBottleneck, MobileConv
    from convforge.nn.search_stage import SearchStage
    from convforge.nn.spatial_pyramid_pool import SPPF

    @register_block("Conv")
    def conv(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Module:
        """Conv2d (no bias, padding k//2) → BatchNorm → SiLU."""
        return ConvNormAct(c_in, c_out, kernel, stride, groups=groups, act_layer=nn.SiLU)

    @register_block("MnConv")
    def mn_conv(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Module:
        """LeYOLO's mn_conv: Conv2d with bias (padding 0 when kernel == stride, else k//2) → BatchNorm → SiLU."""
        return MobileConv(c_in, c_out, kernel, stride, groups)

    @register_block("IB", scaled=(2,))
    def inverted_bottleneck(c_in: int, c_out: int, kernel: int = 3, expansion: int | None = None, stride: int = 1,
                            pointwise: bool = True) -> nn.Module:  # fmt: skip
        """Inverted bottleneck [c_out, k, expansion (scaled by width; None = c_in), stride, pointwise]."""
        return InvertedBottleneck(c_in, c_out, kernel, expansion, stride, pointwise)

    @register_block("SPPF")
    def sppf(c_in: int, c_out: int, kernel: int = 5) -> nn.Module:
        """Spatial pyramid pooling (fast): three chained max-pools, concatenated."""
        return SPPF(c_in, c_out, kernel)

    @register_block("Detect", channels="same")
    def detect(c_in: int | list[int], num_classes: int = 80, reg_max: int = 16) -> nn.Module:
        """The anchor-free DNiN detection head over the rows it reads (strides 8, 16, 32)."""
        levels = c_in if isinstance(c_in, list) else [c_in]
        strides = tuple(8 * 2**i for i in range(len(levels)))
        return DetectHead(levels, num_classes, reg_max, strides)

    @register_block("Stage")
    def stage(c_in: int, c_out: int, depth: int = 1, kernel: int = 3, expansion: int = 1, branch: str = "ib",
              layout: str = "sequential", stride: int = 2) -> nn.Module:  # fmt: skip
        """A searchable stage: strided k×k transition, then ``depth`` residual branches (ib, ib_se, ib_eca, conv)
        in a sequential or parallel layout."""
        return SearchStage(c_in, c_out, depth, kernel, expansion, branch, layout, stride)

    @register_block("Classify", channels="fixed")
    def classify(c_in: int, num_classes: int, dropout: float = 0.0) -> nn.Module:
        """Global average pooling → dropout → linear layer to ``num_classes`` logits."""
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes))

    @register_block("Concat", channels="sum")
    def concat(c_in: list[int], dim: int = 1) -> nn.Module:
        """Concatenation of several inputs along channels."""
        return _Concat(dim)

    @register_block("Upsample", channels="same")
    def upsample(c_in: int, scale: int = 2, mode: str = "nearest") -> nn.Module:
        """Upsampling by ``scale``."""
        return nn.Upsample(scale_factor=scale, mode=mode)

    @register_block("MaxPool", channels="same")
    def max_pool(c_in: int, kernel: int = 2, stride: int | None = None, padding: int = 0) -> nn.Module:
        """Max pooling."""
        return nn.MaxPool2d(kernel, stride, padding)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Concat(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(inputs, self.dim)
