"""FP32 PyTorch, FP32 onnxruntime and INT8 onnxruntime timed side by side: same input, same threads, one process.

The variants are timed in turn, round after round, so that a noisy machine slows all of them
alike; each figure (median, 10th and 90th percentiles of a round's timed runs) is the median
over rounds.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from convforge.errors import InvalidValueError
from convforge.profiler.cpu_features import int8_dot_product
from convforge.profiler.latency import measure_latency
from convforge.progress_bars import hidden
from convforge.runs.onnx_model import OnnxModel
from convforge.tables import text_table

ROUNDS = 5
MAX_INPUT_MIB = 1024  # the largest timed input batch, in MiB of float32
FASTER = 1.1  # an INT8 speed-up below this is called no speed-up


@dataclass(frozen=True)
class SpeedRow:
    """One variant at one batch size: latency in ms (median, 10th and 90th percentiles)."""

    variant: str
    batch: int
    median_ms: float
    p10_ms: float
    p90_ms: float


@dataclass
class SpeedComparison:
    """Latency of each variant at each batch size, and what the CPU offers INT8."""

    rows: list[SpeedRow]
    threads: int
    int8_dot_product: bool | None  # VNNI (x86) or dot-product (Arm) instructions; None: not known

    def median(self, variant: str, batch: int) -> float | None:
        return next((r.median_ms for r in self.rows if r.variant == variant and r.batch == batch), None)

    def ratio(self, slower: str, faster: str, batch: int) -> float | None:
        """How many times faster ``faster`` is than ``slower`` at ``batch``."""
        a, b = self.median(slower, batch), self.median(faster, batch)
        return a / b if a is not None and b else None

    def table(self) -> str:
        """Median (p10–p90) per variant and batch, in ms and images/s, with the ratio to FP32 onnxruntime."""
        rows = []
        for r in self.rows:
            base = self.median("FP32 onnxruntime", r.batch)
            ratio = f"{base / r.median_ms:.2f}×" if base else "—"
            rows.append((r.variant, r.batch, f"{r.median_ms:.3f}", f"{r.p10_ms:.3f}–{r.p90_ms:.3f}",
                         f"{1e3 * r.batch / r.median_ms:,.0f}", ratio))  # fmt: skip
        return text_table(["variant", "batch", "median ms", "p10–p90 ms", "images/s", "vs ORT FP32"], rows,
                          align="lrrrrr")  # fmt: skip

    def verdict(self) -> str:
        """One sentence: is INT8 faster than FP32 onnxruntime here, at the largest batch measured?"""
        batch = max(r.batch for r in self.rows)
        ratio = self.ratio("FP32 onnxruntime", "INT8 onnxruntime", batch)
        if ratio is None:
            return "INT8 was not timed"
        if ratio >= FASTER:
            return f"INT8 is {ratio:.2f}× as fast as FP32 onnxruntime at batch {batch} on this CPU"
        why = {False: ": this CPU lacks INT8 dot-product instructions (VNNI)", None: "", True: ""}[
            self.int8_dot_product
        ]
        return f"INT8 is not faster than FP32 onnxruntime on this CPU ({ratio:.2f}× at batch {batch}){why}"

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [asdict(r) for r in self.rows], "threads": self.threads,
                "int8_dot_product": self.int8_dot_product, "verdict": self.verdict()}  # fmt: skip


def check_timed_input(input_size: Sequence[int], batch: int) -> None:
    """Refuse to time a batch of ``batch`` inputs of ``input_size`` (C, H, W) larger than ``MAX_INPUT_MIB``."""
    input_mib = batch * math.prod(input_size) * 4 / 2**20
    if input_mib > MAX_INPUT_MIB:
        raise InvalidValueError(f"a batch of {batch} inputs of {'x'.join(map(str, input_size))} takes "
                                f"{input_mib:,.0f} MiB; time at most {MAX_INPUT_MIB} MiB of input (a smaller "
                                "batch)")  # fmt: skip


def compare_speed(variants: dict[str, nn.Module | str | Path], input_size: Sequence[int],
                  batches: Sequence[int] = (1, 64), threads: int | None = None, rounds: int = ROUNDS,
                  progress: bool = False) -> SpeedComparison:  # fmt: skip
    """Time every variant (a module, or an ONNX file run by onnxruntime) on random inputs of ``input_size``
    (C, H, W) at each batch size; ``threads`` (default: PyTorch's count) is the same for all."""
    if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batches):
        raise InvalidValueError(f"batch sizes must be positive integers, got {list(batches)}")
    check_timed_input(input_size, max(batches))
    threads = threads or torch.get_num_threads()
    models = {name: (OnnxModel(v, threads) if isinstance(v, (str, Path)) else v.eval()) for name, v in variants.items()}
    rows = []
    steps = tqdm(total=len(batches) * rounds * len(models), desc="latency", unit="run", disable=hidden(progress),
                 leave=False)  # fmt: skip
    for batch in batches:
        x = torch.rand(batch, *input_size)
        runs = 30 if batch == 1 else 5
        medians: dict[str, list[float]] = {name: [] for name in models}
        low: dict[str, list[float]] = {name: [] for name in models}
        high: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(rounds):
            for name, model in models.items():
                result = measure_latency(model, (x,), runs=runs, warmup=2, threads=threads)
                medians[name].append(result.median_ms)
                low[name].append(result.p10_ms)
                high[name].append(result.p90_ms)
                steps.update()
        for name in models:
            rows.append(SpeedRow(name, batch, statistics.median(medians[name]), statistics.median(low[name]),
                                 statistics.median(high[name])))  # fmt: skip
    steps.close()
    return SpeedComparison(rows, threads, int8_dot_product())


def is_quantised(path: str | Path) -> bool:
    """Whether an ONNX file holds quantised (QDQ or integer) operations."""
    import onnx

    integer_ops = {"DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}
    return any(node.op_type in integer_ops for node in onnx.load(str(path), load_external_data=False).graph.node)


def compare_onnx_file(path: str | Path, batches: Sequence[int] = (1, 64), threads: int | None = None,
                      progress: bool = False) -> SpeedComparison:  # fmt: skip
    """Time an ONNX file convforge wrote beside its siblings: the run's FP32 PyTorch model (in inference form),
    ``model.onnx`` and ``model.int8.onnx`` where they exist, at the input size the file records."""
    from convforge.errors import ConvforgeError
    from convforge.runs.loading import load_trained
    from convforge.runs.onnx_model import read_metadata, run_directory_of
    from convforge.surgery.inference_form import inference_form

    path = Path(path)
    if not path.is_file():
        raise ConvforgeError(f"no ONNX file at {path}")
    record = read_metadata(path) or {}
    size = record.get("input_size")
    if not size:
        raise ConvforgeError(f"{path} records no input size (it was not written by convforge export or quantize)")
    variants: dict[str, nn.Module | str | Path] = {}
    run_dir = run_directory_of(path)
    if run_dir is not None:
        try:
            variants["FP32 PyTorch eager"] = inference_form(load_trained(run_dir).model)
        except ConvforgeError as err:  # a run whose model cannot be rebuilt: time the files alone
            warnings.warn(f"the PyTorch model of {run_dir} is left out: {err}", stacklevel=2)
    files = [path] + [path.parent / name for name in ("model.onnx", "model.int8.onnx") if path.parent / name != path]
    found: dict[str, Path] = {}
    for file in files:
        if file.is_file():
            found.setdefault("INT8 onnxruntime" if is_quantised(file) else "FP32 onnxruntime", file)
    variants.update(sorted(found.items()))  # FP32 before INT8
    return compare_speed(variants, tuple(size), batches, threads, progress=progress)
