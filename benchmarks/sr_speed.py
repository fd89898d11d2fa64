"""×2 super-resolution of one 1080p frame to 4K on this machine: SESR-M5 collapsed and expanded, ESPCN, FSRCNN.

All four run in the same process on the same 1×1×1080×1920 luma input, round by round
in turn; each figure is the median over rounds of one inference (no autograd). MACs
come from convforge's profiler at that input. SESR-M5 expanded runs every linear block
as its two convolutions (k×k to 256 channels, then 1×1), which is how the network would
run without collapsing; collapsed is ``convforge.collapse`` of it. Prints times, MACs
and the ratios to SESR-M5 collapsed.

    python benchmarks/sr_speed.py [--rounds 3] [--height 1080 --width 1920]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import convforge
from convforge.tables import human_count, text_table


def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    expanded = convforge.create_model("sesr_m5", mode="expanded").eval()
    return {
        "sesr_m5 collapsed": convforge.collapse(expanded).eval(),
        "sesr_m5 expanded": expanded,
        "espcn": convforge.create_model("espcn").eval(),
        "fsrcnn": convforge.create_model("fsrcnn").eval(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1920)
    args = parser.parse_args()
    networks = models()
    shape = (1, args.height, args.width)
    macs = {name: convforge.profile(model, shape).macs for name, model in networks.items()}
    x = torch.rand(1, *shape)
    times: dict[str, list[float]] = {name: [] for name in networks}
    with torch.no_grad():
        for model in networks.values():  # warm-up
            model(x)
        for _ in range(args.rounds):
            for name, model in networks.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    base_ms = statistics.median(times["sesr_m5 collapsed"]) * 1e3
    base_macs = macs["sesr_m5 collapsed"]
    rows = []
    for name in networks:
        ms = statistics.median(times[name]) * 1e3
        ratios = f"{macs[name] / base_macs:.2f}", f"{ms / base_ms:.2f}"
        rows.append((name, human_count(macs[name]), f"{ms:.0f}", *ratios))
    print(f"×2, {args.height}×{args.width} → {2 * args.height}×{2 * args.width}, median of {args.rounds}, "
          f"{torch.get_num_threads()} threads, float32, CPU")  # fmt: skip
    print(text_table(["model", "MACs", "ms", "MACs / collapsed", "time / collapsed"], rows))


if __name__ == "__main__":
    main()
