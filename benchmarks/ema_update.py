"""The EMA of weights: timm's ``ModelEmaV3`` (what the engine uses) against a per-tensor update loop.

The loop is the plainest correct EMA (``ema = d·ema + (1 − d)·w`` per floating-point
tensor of the state dict, integer buffers copied), as convforge had before it used
timm's. Both update the same model's copy, alternately, in one process; prints the
microseconds per update of each and their ratio, and checks that they agree.

    python benchmarks/ema_update.py [--updates 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

import convforge
from convforge.engine.ema import build_ema
from convforge.tables import text_table

MODELS = ["resnet20", "simplenet_cifar_310k", "simplenet_cifar_5m"]


class LoopEma:
    """The per-tensor baseline."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (step - 1) / (step + 9))
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            new = source[name].detach()
            if value.dtype.is_floating_point:
                value.mul_(decay).add_(new, alpha=1 - decay)
            else:
                value.copy_(new)


def timed(ema, model: nn.Module, updates: int) -> float:
    """Microseconds per update."""
    start = time.perf_counter()
    for step in range(1, updates + 1):
        ema.update(model, step=step)
    return 1e6 * (time.perf_counter() - start) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name in MODELS:
        model = convforge.create_model(name)
        timm_us, loop_us = [], []
        for _ in range(args.repeats):
            timm_ema, loop_ema = build_ema(model, 0.999), LoopEma(model, 0.999)
            loop_us.append(timed(loop_ema, model, args.updates))
            timm_us.append(timed(timm_ema, model, args.updates))
            for a, b in zip(timm_ema.module.state_dict().values(), loop_ema.module.state_dict().values()):
                torch.testing.assert_close(a, b)
        t, o = statistics.median(timm_us), statistics.median(loop_us)
        params = sum(p.numel() for p in model.parameters())
        rows.append((name, f"{params:,}", f"{o:.0f}", f"{t:.0f}", f"{t / o:.2f}"))
    print(f"\nmicroseconds per EMA update, median of {args.repeats} × {args.updates} updates, "
          f"{torch.get_num_threads()} threads\n")  # fmt: skip
    print(text_table(["model", "params", "per-tensor loop µs", "timm ModelEmaV3 µs", "timm / loop"], rows))


if __name__ == "__main__":
    main()
