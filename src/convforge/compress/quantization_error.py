"""How far an INT8 graph strays from its FP32 original, operation by operation: the SQNR of each one's output.

SQNR (signal-to-quantisation-noise ratio, dB) = 10·log10(Σ y² / Σ (y − ŷ)²), with y a layer's
output in the FP32 graph and ŷ the same tensor in the INT8 graph (after its quantise–dequantise
pair, so the layer's own output rounding counts), both on the same inputs. Errors accumulate
along the network, so the SQNR of a layer's input is measured as well: their difference is
what the layer itself loses, the ranking ``--auto-exclude`` uses.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from tqdm import tqdm

from convforge.compress.onnx_graph import (
    SHAPE_OPS,
    WEIGHTED_OPS,
    consumers_of,
    has_int8_weights,
    module_path,
    producers_of,
)
from convforge.progress_bars import hidden
from convforge.runs.onnx_model import inference_session

SQNR_CAP_DB = 100.0  # beyond this a tensor is as good as exact
SQNR_BATCH = 8  # examples per onnxruntime call while every layer's output is kept


@dataclass(frozen=True)
class LayerError:
    """One weighted layer's quantisation error on the calibration inputs (dB; inf when exact)."""

    module: str
    node: str
    op: str
    sqnr_db: float  # of the layer's output
    input_sqnr_db: float  # of what it reads
    int8: bool  # False: kept in FP32

    @property
    def weighted(self) -> bool:
        """Whether this is a convolution or matrix product (else an addition, product, pooling, ...)."""
        return self.op in WEIGHTED_OPS

    @property
    def label(self) -> str:
        """The module path, with the operation for one that is not a weighted layer (``blocks.0.se (Mul)``)."""
        return self.module if self.weighted else f"{self.module} ({self.op})"

    @property
    def lost_db(self) -> float:
        """How many dB of SQNR this layer loses between its input and its output (an exact tensor counts as
        ``SQNR_CAP_DB``)."""
        return min(self.input_sqnr_db, SQNR_CAP_DB) - min(self.sqnr_db, SQNR_CAP_DB)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON allows them: an exact tensor's infinite SQNR becomes None."""
        values = {**asdict(self), "lost_db": self.lost_db}
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in values.items()}


def _after_requantisation(tensor: str, consumers: dict[str, list[onnx.NodeProto]]) -> str:
    """The dequantised copy of ``tensor`` when the INT8 graph rounds it (tensor → Q → DQ), else ``tensor``."""
    for q in consumers.get(tensor, []):
        if q.op_type == "QuantizeLinear":
            for dq in consumers.get(q.output[0], []):
                if dq.op_type == "DequantizeLinear":
                    return dq.output[0]
    return tensor


def _before_dequantisation(tensor: str, producers: dict[str, onnx.NodeProto]) -> str:
    """The float tensor an INT8 graph's activation came from (DQ ← Q ← tensor), else ``tensor``."""
    dq = producers.get(tensor)
    if dq is not None and dq.op_type == "DequantizeLinear":
        q = producers.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return q.input[0]
    return tensor


def _with_outputs(model: onnx.ModelProto, names: Sequence[str], folder: Path, file: str) -> Path:
    """A copy of ``model`` that also returns the tensors ``names``, saved in ``folder``."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in model.graph.output}
    for name in dict.fromkeys(names):
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    path = folder / file
    onnx.save(model, str(path))
    return path


def _sqnr(signal: float, noise: float) -> float:
    if noise <= 0:
        return math.inf
    if signal <= 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def _runs_in_int8(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto],
                  consumers: dict[str, list[onnx.NodeProto]], int8_types: Collection[str]) -> bool:  # fmt: skip
    """Whether a node of a type onnxruntime runs in INT8 reads a dequantised tensor and has its output quantised
    again."""
    if node.op_type not in int8_types:
        return False
    reads = node.input[0] in producers and producers[node.input[0]].op_type == "DequantizeLinear"
    return reads and any(c.op_type == "QuantizeLinear" for c in consumers.get(node.output[0], []))


def layer_errors(fp32_path: str | Path, int8_path: str | Path, inputs: Sequence[np.ndarray],
                 kept_fp32: Collection[str] = (), int8_types: Collection[str] = (),
                 progress: bool = False) -> list[LayerError]:  # fmt: skip
    """The SQNR of the input and output of every quantised operation, INT8 against FP32, over ``inputs`` (batches).

    The operations are the weighted layers, every other operation of the ``int8_types`` that the
    INT8 graph runs quantised (additions, products, pooling, ...), and the nodes ``kept_fp32``
    (by ONNX name).
    """
    fp32, int8 = onnx.load(str(fp32_path)), onnx.load(str(int8_path))
    fp32_tensors = {o for n in fp32.graph.node for o in n.output} | {i.name for i in fp32.graph.input}
    consumers, producers = consumers_of(int8), producers_of(int8)
    layers = []  # (node, fp32 output, int8 output, fp32 input, int8 input)
    for node in int8.graph.node:
        if node.op_type in SHAPE_OPS or not node.input or not node.output:
            continue
        listed = node.op_type in WEIGHTED_OPS or node.name in kept_fp32
        if not (listed or _runs_in_int8(node, producers, consumers, int8_types)):
            continue
        out_int8, in_int8 = _after_requantisation(node.output[0], consumers), node.input[0]
        # a graph output keeps its name after the Q–DQ pair the quantiser appends, so look there too
        out_float = node.output[0] if node.output[0] in fp32_tensors else out_int8
        in_float = _before_dequantisation(in_int8, producers)
        if out_float in fp32_tensors and in_float in fp32_tensors:
            layers.append((node, out_float, out_int8, in_float, in_int8))
    if not layers:
        return []
    quantised = {n.name for n, *_ in layers if (has_int8_weights(n, producers) if n.op_type in WEIGHTED_OPS
                                                else _runs_in_int8(n, producers, consumers, int8_types))}  # fmt: skip
    fp32_names = [name for _, out, _, inp, _ in layers for name in (out, inp)]
    int8_names = [name for _, _, out, _, inp in layers for name in (out, inp)]
    sums = np.zeros((len(layers), 2, 2), dtype=np.float64)  # layer × (output, input) × (signal, noise)
    with tempfile.TemporaryDirectory(prefix="convforge-sqnr-") as tmp:
        reference = inference_session(_with_outputs(fp32, fp32_names, Path(tmp), "fp32.onnx"))
        candidate = inference_session(_with_outputs(int8, int8_names, Path(tmp), "int8.onnx"))
        feed_name = reference.get_inputs()[0].name
        chunks = [b[i : i + SQNR_BATCH] for b in inputs for i in range(0, len(b), SQNR_BATCH)]
        for chunk in tqdm(chunks, desc="layer SQNR", unit="batch", disable=hidden(progress), leave=False):
            want = reference.run(fp32_names, {feed_name: chunk})
            got = candidate.run(int8_names, {feed_name: chunk})
            for i in range(len(layers)):
                for j in range(2):
                    y, y_hat = want[2 * i + j].astype(np.float64), got[2 * i + j].astype(np.float64)
                    sums[i, j, 0] += float(np.square(y).sum())
                    sums[i, j, 1] += float(np.square(y - y_hat).sum())
    return [
        LayerError(
            module_path(node.name),
            node.name,
            node.op_type,
            _sqnr(*sums[i, 0]),
            _sqnr(*sums[i, 1]),
            node.name in quantised,
        )  # fmt: skip
        for i, (node, *_rest) in enumerate(layers)
    ]
