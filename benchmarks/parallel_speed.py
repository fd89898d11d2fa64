"""Forward + backward time of a residual stack: sequential against parallel, fused and unfused.

The three layouts hold the very same branch modules (equal parameters by
construction). For each depth and width, all three run in the same process on the
same input, interleaved round by round; each figure is the median over rounds of
one training step's forward and backward (no optimiser step). Prints the times and
the ratios sequential / fused and unfused / fused (above 1: the fused parallel path
is faster).

    python benchmarks/parallel_speed.py [--batch 32] [--size 16] [--rounds 15] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from convforge.nn import ParallelResidualStack, SequentialResidualStack
from convforge.tables import text_table


def step_ms(stack: torch.nn.Module, x: torch.Tensor) -> float:
    """Milliseconds of one forward + backward."""
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    stack(x).square().mean().backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def measure(width: int, depth: int, args: argparse.Namespace) -> dict[str, float]:
    torch.manual_seed(0)
    device = torch.device(args.device)
    sequential = SequentialResidualStack(width, depth, kernel=args.kernel).to(device).train()
    fused = ParallelResidualStack.from_branches(sequential.branches, fused=True).train()
    unfused = ParallelResidualStack.from_branches(sequential.branches, fused=False).train()
    layouts = {"sequential": sequential, "parallel unfused": unfused, "parallel fused": fused}
    x = torch.randn(args.batch, width, args.size, args.size, device=device)
    if args.channels_last:
        x = x.to(memory_format=torch.channels_last)
    times: dict[str, list[float]] = {name: [] for name in layouts}
    for round_ in range(args.warmup + args.rounds):
        for name, stack in layouts.items():
            stack.zero_grad(set_to_none=True)
            elapsed = step_ms(stack, x)
            if round_ >= args.warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=16, help="feature map height and width")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    rows = []
    totals = {"sequential": 0.0, "parallel unfused": 0.0, "parallel fused": 0.0}
    for width in args.widths:
        for depth in args.depths:
            ms = measure(width, depth, args)
            for name in totals:
                totals[name] += ms[name]
            params = depth * (width * width * args.kernel**2 + 2 * width)
            rows.append((width, depth, f"{params:,}", f"{ms['sequential']:.2f}", f"{ms['parallel unfused']:.2f}",
                         f"{ms['parallel fused']:.2f}", f"{ms['sequential'] / ms['parallel fused']:.2f}",
                         f"{ms['parallel unfused'] / ms['parallel fused']:.2f}"))  # fmt: skip
    threads = torch.get_num_threads() if args.device == "cpu" else args.device
    print(f"forward + backward, batch {args.batch}, {args.size}x{args.size}, kernel {args.kernel}, "
          f"median of {args.rounds}, threads/device: {threads}")  # fmt: skip
    print(text_table(["width", "depth", "params", "seq ms", "par unfused ms", "par fused ms", "seq/fused",
                      "unfused/fused"], rows))  # fmt: skip
    fused = totals["parallel fused"]
    print(f"total: sequential {totals['sequential']:.1f} ms, parallel unfused {totals['parallel unfused']:.1f} ms, "
          f"parallel fused {fused:.1f} ms; sequential/fused {totals['sequential'] / fused:.2f}, "
          f"unfused/fused {totals['parallel unfused'] / fused:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
