"""The block compatibility matrix: every registered spec block through convforge's whole toolchain.

Each block is built into a small host network from spec rows (a classifier at 32×32 for most blocks, a detector at
64×64 for necks and the detection head), then taken through each step:

- **build**: forward and backward from the spec row;
- **profile**: convforge's MACs against ``torch.utils.flop_counter.FlopCounterMode`` (its FLOPs / 2), and the
  operations with no formula;
- **LinearScope**: the affine replay around one input must give F(x0) back for the probe x0, and be additive in
  its probes, or the replay refuses the operation by name;
- **re-parameterise**: ``convforge.reparameterize`` with random BatchNorm statistics, outputs compared (relative);
- **prune**: ``convforge.prune`` to 70 % of the MACs, the pruned network's output shape kept;
- **ONNX**: ``export_onnx`` and onnxruntime's parity with PyTorch;
- **INT8**: ``convforge.quantize`` (random calibration inputs), the output's SQNR against FP32 onnxruntime.

Run:  .venv/bin/python benchmarks/block_matrix.py            (writes docs/blocks.md)
      .venv/bin/python benchmarks/block_matrix.py --only SE,BiFPN --out -   (a few blocks, to stdout)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import convforge
from convforge.engine.export import export_onnx
from convforge.explain import LinearScope
from convforge.runs.onnx_model import OnnxModel
from convforge.spec import build_spec, list_blocks

STEM = [-1, 1, "Conv", [32, 3, 1]]
HEAD = [-1, 1, "Classify", [10]]
LEVELS = [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], [-1, 1, "Conv", [32, 3, 2], "c3"],
          [-1, 1, "Conv", [48, 3, 2], "c4"], [-1, 1, "Conv", [64, 3, 2], "c5"]]  # fmt: skip
# a pyramid's levels upsampled to the finest and classified: one output tensor, through every neck path
PYRAMID_HEAD = [["p4"], 1, "Upsample", [2]], [["p5"], 1, "Upsample", [4]], [["p3", -2, -1], 1, "Concat", []], HEAD

# block -> the rows between the stem and the head (a classifier), or a whole detector's rows
HOSTS: dict[str, list[list]] = {
    "Conv": [[-1, 1, "Conv", [32, 3, 2]]],
    "MnConv": [[-1, 1, "MnConv", [32, 3, 2]]],
    "IB": [[-1, 1, "IB", [32, 3, 96, 1]]],
    "SPPF": [[-1, 1, "SPPF", [32, 5]]],
    "Stage": [[-1, 1, "Stage", [48, 2, 3, 2, "ib_se", "parallel", 2]]],
    "Concat": [[0, 1, "Conv", [16, 1, 1]], [[0, -1], 1, "Concat", []]],
    "Upsample": [[-1, 1, "Upsample", [2, "nearest"]]],
    "MaxPool": [[-1, 1, "MaxPool", [2]]],
    "Classify": [],
    "SE": [[-1, 1, "SE", [0.25]]],
    "ECA": [[-1, 1, "ECA", [3]]],
    "CBAM": [[-1, 1, "CBAM", []]],
    "CoordAttn": [[-1, 1, "CoordAttn", []]],
    "Ghost": [[-1, 1, "Ghost", [32, 1, 2, 3, 1]]],
    "UIB": [[-1, 1, "UIB", [32, 3, 3, 0, 2, 4.0]]],
    "PConv": [[-1, 1, "PConv", [4, 2.0]]],
    "Res2Net": [[-1, 1, "Res2Net", [64, 1, 4]]],
    "RepVGG": [[-1, 1, "RepVGG", [32, 3, 2]]],
    "MobileOne": [[-1, 1, "MobileOne", [32, 3, 1, 2]]],
    "ASPP": [[-1, 1, "ASPP", [32, [2, 4]]]],
    "PPM": [[-1, 1, "PPM", [32, [1, 2, 4]]]],
    "Detect": [*LEVELS, [["c3", "c4", "c5"], 1, "Detect", [5]]],
    "FPN": [*LEVELS, [["c3", "c4", "c5"], 1, "FPN", [24], ["p3", "p4", "p5"]], *PYRAMID_HEAD],
    "PAN": [*LEVELS, [["c3", "c4", "c5"], 1, "PAN", [24], ["p3", "p4", "p5"]], *PYRAMID_HEAD],
    "BiFPN": [*LEVELS, [["c3", "c4", "c5"], 2, "BiFPN", [24], ["p3", "p4", "p5"]], *PYRAMID_HEAD],
}
PYRAMIDS = {"Detect", "FPN", "PAN", "BiFPN"}  # hosts at 64×64 with three levels
STEPS = ["build", "profile", "LinearScope", "re-parameterise", "prune", "ONNX", "INT8"]


def host(block: str) -> tuple[nn.Module, tuple[int, int, int]]:
    """The small network that carries ``block``, and its input size."""
    if block in PYRAMIDS:
        task = "detect" if block == "Detect" else "classify"
        spec = {"task": task, "in_channels": 3, "input_size": [3, 64, 64], "layers": HOSTS[block]}
    else:
        spec = {"in_channels": 3, "input_size": [3, 32, 32], "layers": [STEM, *HOSTS[block], HEAD]}
    torch.manual_seed(0)
    return build_spec(spec), tuple(spec["input_size"])


def randomise_batchnorm(model: nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so that folding them is tested."""
    generator = torch.Generator().manual_seed(1)
    for norm in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        shape = norm.running_mean.shape
        norm.running_mean.copy_(torch.rand(shape, generator=generator) - 0.5)
        norm.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
        if norm.affine:
            norm.weight.data.copy_(torch.rand(shape, generator=generator) + 0.5)
            norm.bias.data.copy_(torch.rand(shape, generator=generator) - 0.5)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b|."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def first_line(err: BaseException) -> str:
    """The error's first clause: up to the first line break or semicolon."""
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__).split("; ")[0].rstrip(".")


def output_tensor(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else torch.cat([o.flatten(1) for o in out], 1)


def step_build(model: nn.Module, size: tuple[int, ...], _: Path) -> str:
    model.train()
    out = output_tensor(model(torch.randn(2, *size)))
    out.float().pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.zero_grad(set_to_none=True)
    return f"fails: no gradient reaches {missing[0]}" if missing else "pass"


def step_profile(model: nn.Module, size: tuple[int, ...], _: Path) -> str:
    result = convforge.profile(model.eval(), size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *size))
    reference = counter.get_total_flops() // 2
    if result.uncounted_ops:
        return f"fails: no formula for {', '.join(sorted(result.uncounted_ops))}"
    if result.macs == reference:
        return f"pass: {result.macs / 1e6:.2f} M MACs = FlopCounterMode"
    return f"differs: {result.macs:,} MACs against FlopCounterMode's {reference:,}"


def step_linear_scope(model: nn.Module, size: tuple[int, ...], _: Path) -> str:
    # in float64: A·x = affine − bias cancels, and in float32 a bias part 10⁴ times the linear one leaves 1e-3
    torch.manual_seed(2)
    x0, p, q = (torch.randn(1, *size, dtype=torch.float64) for _ in range(3))
    try:
        with torch.no_grad():
            scope = LinearScope(model.double().eval())(x0, torch.cat([x0, p, q, p + q]))
    except Exception as err:  # noqa: BLE001 - the refusal is the cell's content
        return f"refused: {first_line(err)}"
    back = relative(scope.affine[:1], scope.output)
    linear = scope.linear
    additive = relative(linear[1] + linear[2], linear[3])
    if back <= 1e-9 and additive <= 1e-9:
        return f"exact: F(x0) back to {back:.0e}, additive to {additive:.0e}"
    return f"fails: F(x0) back to {back:.1e}, additive to {additive:.1e}"


def step_reparameterise(model: nn.Module, size: tuple[int, ...], _: Path) -> str:
    model = model.eval()
    x = torch.randn(2, *size)
    with torch.no_grad():
        deployed = convforge.reparameterize(model)
        error = relative(output_tensor(deployed(x)), output_tensor(model(x)))
    before, after = (convforge.profile(m, size).macs for m in (model, deployed))
    folded = f"; MACs {before / 1e6:.2f} M → {after / 1e6:.2f} M" if after != before else ""
    return f"pass: equal to {error:.0e}{folded}" if error <= 1e-5 else f"fails: outputs differ by {error:.1e}"


def step_prune(model: nn.Module, size: tuple[int, ...], _: Path) -> str:
    x = torch.randn(1, *size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = convforge.prune(model.eval(), x, "macs=0.7", progress=False)
    except Exception as err:  # noqa: BLE001 - the refusal is the cell's content
        return f"refused: {first_line(err)}"
    with torch.no_grad():
        same = output_tensor(result.model(x)).shape == output_tensor(model(x)).shape
    if not same:
        return "fails: the pruned network's output shape changed"
    return f"pass: MACs ×{result.macs_ratio:.2f}, params ×{result.params_ratio:.2f}"


def step_onnx(model: nn.Module, size: tuple[int, ...], folder: Path) -> str:
    try:
        result = export_onnx(model.eval(), folder / "model.onnx", (2, *size))
    except Exception as err:  # noqa: BLE001 - the refusal is the cell's content
        return f"refused: {first_line(err)}"
    if result.parity:
        return f"pass: onnxruntime within {result.max_rel_diff:.0e}"
    return f"fails: onnxruntime differs by {result.max_rel_diff:.1e}"


def step_int8(model: nn.Module, size: tuple[int, ...], folder: Path) -> str:
    torch.manual_seed(3)
    calibration = torch.randn(64, *size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = convforge.quantize(model.eval(), calibration, out=folder / "int8", evaluate=False,
                                        latency=False, progress=False)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - the refusal is the cell's content
        return f"refused: {first_line(err)}"
    x = calibration[:16]
    fp32, int8 = OnnxModel(result.fp32_path)(x), OnnxModel(result.int8_path)(x)
    noise = (fp32 - int8).pow(2).sum().clamp_min(1e-30)
    sqnr = float(10 * torch.log10(fp32.pow(2).sum() / noise))
    quantised = sum(e.int8 for e in result.layers)
    floats = f"; in FP32: {', '.join(sorted(result.float_operations))}" if result.float_operations else ""
    return f"pass: {quantised} layers INT8, output SQNR {sqnr:.1f} dB{floats}"


STEP_FUNCTIONS: dict[str, Callable[[nn.Module, tuple[int, ...], Path], str]] = {
    "build": step_build, "profile": step_profile, "LinearScope": step_linear_scope,
    "re-parameterise": step_reparameterise, "prune": step_prune, "ONNX": step_onnx, "INT8": step_int8,
}  # fmt: skip


def run_block(block: str) -> dict[str, str]:
    """Every step's outcome for one block; a step that raises is reported as failing, with its first line."""
    cells = {}
    with tempfile.TemporaryDirectory() as folder:
        for step in STEPS:
            model, size = host(block)  # each step starts from the same network: training mode moves BatchNorm
            randomise_batchnorm(model)
            try:
                cells[step] = STEP_FUNCTIONS[step](model, size, Path(folder))
            except Exception as err:  # noqa: BLE001 - an unexpected failure is reported, not hidden
                cells[step] = f"fails: {type(err).__name__}: {first_line(err)}"
    return cells


def markdown(rows: dict[str, dict[str, str]], seconds: float) -> str:
    lines = [
        "# The block compatibility matrix",
        "",
        "Every registered spec block, built into a small host network and taken through each step of convforge.",
        "Generated by `.venv/bin/python benchmarks/block_matrix.py` "
        f"({len(rows)} blocks in {seconds:.0f} s); do not edit by hand.",
        "",
        "- **Hosts.** A classifier at 3×32×32 (a 3×3 `Conv` stem of 32 channels, the block, `Classify` to 10 "
        "classes). Necks and `Detect` read three levels at 3×64×64: five strided `Conv` rows give 32, 48 and 64 "
        "channels at strides 8, 16 and 32. `Detect` (5 classes) reads them directly. A neck (24 channels; BiFPN "
        "two layers) reads them, and its three outputs are upsampled to the finest level, concatenated and "
        "classified, so that every path through the neck reaches the one output. BatchNorm statistics are "
        "random, so folding them is tested.",
        "- **profile**: convforge's MACs against `torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2) on one "
        "input; `pass` means equal, with no operation lacking a formula.",
        "- **LinearScope**: in float64, replaying the probe x0 through the affine map around x0 must give F(x0) "
        "back, and the map must be additive in its probes, both to 1e-9; or the replay refuses the operation by "
        "name. (In float32, A·x is the difference of two outputs, and where the bias part is 10⁴ times the linear "
        "one, as after two BiFPN layers with random BatchNorm, the difference keeps only 1e-3.)",
        "- **re-parameterise**: `convforge.reparameterize` (RepVGG and MobileOne branches, SESR's collapsible "
        "blocks, BatchNorm) against the trained form, relative to the output's largest value; the MACs where "
        "folding changes them.",
        '- **prune**: `convforge.prune(model, x, "macs=0.7")` (Torch-Pruning\'s dependency graph), the output '
        "shape kept.",
        "- **ONNX**: `export_onnx` and onnxruntime's parity with PyTorch (relative to 1 + |output|).",
        "- **INT8**: `convforge.quantize` with 64 random calibration inputs, the output's SQNR of INT8 against FP32 "
        "onnxruntime on 16 of them. Random weights and inputs: the SQNR says the step works, not what a trained "
        "network keeps.",
        "",
        "| block | " + " | ".join(STEPS) + " |",
        "|---|" + "---|" * len(STEPS),
    ]
    for block, cells in rows.items():
        lines.append(f"| `{block}` | " + " | ".join(cells[s].replace("|", "\\|") for s in STEPS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated blocks (default: every registered block)")
    parser.add_argument("--out", default="docs/blocks.md", help="markdown file to write, or - for stdout")
    args = parser.parse_args(argv)
    blocks = args.only.split(",") if args.only else list_blocks()
    unknown = [b for b in blocks if b not in HOSTS]
    if unknown:
        parser.error(f"no host network for {', '.join(unknown)}; add one to HOSTS (blocks with hosts: "
                     f"{', '.join(HOSTS)})")  # fmt: skip
    torch.set_num_threads(min(2, torch.get_num_threads()))
    started = time.perf_counter()
    rows = {}
    for block in blocks:
        t = time.perf_counter()
        rows[block] = run_block(block)
        print(f"{block:10s} {time.perf_counter() - t:5.1f} s  " + " | ".join(rows[block][s] for s in STEPS),
              flush=True)  # fmt: skip
    text = markdown(rows, time.perf_counter() - started)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
