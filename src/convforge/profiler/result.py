"""The structured result of profiling a model, and its table, JSON and CSV forms."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from convforge.errors import InvalidValueError
from convforge.profiler.latency import LatencyResult
from convforge.profiler.op_costs import CATEGORIES, CONVENTIONS
from convforge.profiler.op_counter import OpRecord
from convforge.tables import human_count, text_table

MIB = 1024**2


@dataclass
class ModuleRow:
    """One module of the per-module table. Params and MACs include the module's children."""

    path: str
    type: str
    depth: int
    output_shape: Any
    params: int
    macs: dict[str, int]  # per convention

    def to_dict(self, convention: str) -> dict[str, Any]:
        return {
            "module": self.path or "(model)",
            "type": self.type,
            "output_shape": self.output_shape,
            "params": self.params,
            "macs": self.macs[convention],
        }


@dataclass
class ProfileResult:
    """Parameters, MACs/FLOPs, activation memory and (optionally) latency of one model at one input.

    ``macs`` and ``flops`` follow the chosen ``convention``; every convention's total
    stays available in ``macs_by_convention``. FLOPs are always 2 × MACs.
    """

    model: str
    input_shapes: list[tuple[int, ...]]
    convention: str
    params: int
    trainable_params: int
    macs_by_convention: dict[str, int]
    macs_by_category: dict[str, dict[str, int]]  # convention -> category -> MACs
    activation_peak_bytes: int
    modules: list[ModuleRow]
    ops: list[OpRecord] = field(repr=False)
    uncounted_ops: dict[str, int]
    latency: LatencyResult | None = None

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of the whole batch, under ``convention``."""
        return self.macs_by_convention[self.convention]

    @property
    def flops(self) -> int:
        """Floating-point operations, 2 × MACs, under ``convention``."""
        return 2 * self.macs

    @property
    def by_category(self) -> dict[str, int]:
        """MACs per operation category (conv, matmul, norm, ...) under ``convention``, non-zero ones only."""
        return {k: v for k, v in self.macs_by_category[self.convention].items() if v}

    @property
    def activation_peak_mib(self) -> float:
        """Peak activation memory of the forward pass, in MiB."""
        return self.activation_peak_bytes / MIB

    def macs_of(self, op: str | None = None, module_type: str | None = None, convention: str | None = None) -> int:
        """MACs of the operations named ``op`` and/or run directly inside modules of class ``module_type``."""
        convention = convention or self.convention
        types = {row.path: row.type for row in self.modules}
        return sum(
            r.cost.under(convention)
            for r in self.ops
            if (op is None or r.op == op) and (module_type is None or types.get(r.module) == module_type)
        )

    def with_convention(self, convention: str) -> ProfileResult:
        """The same measurements, reported under another convention."""
        if convention not in CONVENTIONS:
            raise InvalidValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
        return ProfileResult(**{**self.__dict__, "convention": convention})

    # ------------------------------------------------------------ output forms

    def to_dict(self, per_module: bool = False) -> dict[str, Any]:
        """A JSON-ready dictionary of the result."""
        data: dict[str, Any] = {
            "model": self.model,
            "input_shapes": [list(s) for s in self.input_shapes],
            "convention": self.convention,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "macs_by_convention": dict(self.macs_by_convention),
            "macs_by_category": self.by_category,
            "activation_peak_bytes": self.activation_peak_bytes,
            "activation_peak_mib": round(self.activation_peak_mib, 4),
            "uncounted_ops": dict(self.uncounted_ops),
            "latency": self.latency.to_dict() if self.latency else None,
        }
        if per_module:
            data["modules"] = [row.to_dict(self.convention) for row in self.modules]
        return data

    def to_json(self, per_module: bool = False) -> str:
        return json.dumps(self.to_dict(per_module), indent=2)

    def to_csv(self, per_module: bool = False, max_depth: int | None = None) -> str:
        """CSV: one row per module with ``per_module``, else one ``metric,value`` row per figure."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if per_module:
            writer.writerow(["module", "type", "output_shape", "params", f"macs_{self.convention}"])
            for row in self.module_rows(max_depth):
                writer.writerow([row.path or "(model)", row.type, _shape_text(row.output_shape), row.params,
                                 row.macs[self.convention]])  # fmt: skip
        else:
            writer.writerow(["metric", "value"])
            for key, value in self.to_dict().items():
                if isinstance(value, dict):
                    for sub, v in value.items():
                        writer.writerow([f"{key}.{sub}", v])
                elif key != "input_shapes":
                    writer.writerow([key, value])
            writer.writerow(["input_shapes", " ".join(_shape_text(s) for s in self.input_shapes)])
        return buffer.getvalue()

    def module_rows(self, max_depth: int | None = None) -> list[ModuleRow]:
        """Per-module rows, down to ``max_depth`` levels below the model (all levels by default)."""
        return [row for row in self.modules if max_depth is None or row.depth <= max_depth]

    def summary_table(self) -> str:
        """A readable summary: parameters, MACs/FLOPs by category, memory and latency."""
        conv = self.convention
        rows: list[tuple[str, str]] = [
            ("model", self.model),
            ("input", ", ".join(_shape_text(s) for s in self.input_shapes)),
            ("params", f"{self.params:,} ({human_count(self.params)})"),
        ]
        if self.trainable_params != self.params:
            rows.append(("trainable params", f"{self.trainable_params:,}"))
        rows += [
            (f"MACs [{conv}]", f"{self.macs:,} ({human_count(self.macs, 'MACs')})"),
            (f"FLOPs [{conv}]", f"{self.flops:,} ({human_count(self.flops, 'FLOPs')})"),
        ]
        for category in CATEGORIES:
            value = self.by_category.get(category)
            if value:
                share = 100 * value / self.macs if self.macs else 0.0
                rows.append((f"  {category}", f"{human_count(value, 'MACs')} ({share:.1f} %)"))
        others = [c for c in CONVENTIONS if c != conv]
        rows.append(("other conventions", ", ".join(f"{c} {human_count(self.macs_by_convention[c], 'MACs')}"
                                                    for c in others)))  # fmt: skip
        rows.append(("peak activations", f"{self.activation_peak_mib:.2f} MiB"))
        if self.latency:
            lat = self.latency
            rows.append(
                (
                    "latency",
                    f"{lat.median_ms:.3f} ms median, IQR {lat.iqr_ms:.3f} ms, p10–p90 {lat.p10_ms:.3f}–{lat.p90_ms:.3f}"
                    f" ms ({lat.runs} runs after {lat.warmup} warm-up, batch {lat.batch_size}, "
                    f"{lat.threads} threads, {lat.device})",
                )
            )
        if self.uncounted_ops:
            rows.append(("no formula for", ", ".join(f"{k} ×{v}" for k, v in sorted(self.uncounted_ops.items()))))
        return text_table(None, rows, align="ll")

    def module_table(self, max_depth: int | None = None) -> str:
        """The per-module table: module path, type, output shape, params, MACs."""
        rows = [
            (
                "  " * row.depth + (row.path.rsplit(".", 1)[-1] if row.path else "(model)"),
                row.type,
                _shape_text(row.output_shape),
                f"{row.params:,}",
                human_count(row.macs[self.convention]),
            )
            for row in self.module_rows(max_depth)
        ]
        return text_table(["module", "type", "output", "params", f"MACs [{self.convention}]"], rows, align="lllrr")


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, tuple):
        return "x".join(str(s) for s in shape)
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    if isinstance(shape, dict):
        return ", ".join(f"{k}: {_shape_text(v)}" for k, v in shape.items())
    return str(shape)


def category_totals(ops: list[OpRecord]) -> dict[str, dict[str, int]]:
    """MACs per convention per category, summed over operation records."""
    totals = {c: Counter({k: 0 for k in CATEGORIES}) for c in CONVENTIONS}
    for record in ops:
        for convention in CONVENTIONS:
            totals[convention][record.cost.category] += record.cost.under(convention)
    return {c: dict(v) for c, v in totals.items()}
