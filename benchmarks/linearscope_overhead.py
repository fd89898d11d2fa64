"""Cost of a LinearScope call against a plain forward pass, in the same process.

For each model: the median time of a plain forward of batch 1 (the floor), of plain
forwards of batch 2 and 3 (what the batch alone costs), of one scope call with one
probe (F(x0) and A·x1 + c: a batch of 2), of the same call that also returns c(x0)
separately (a zero probe more: a batch of 3), and of a scope call with 9 probes, from
which the cost per extra probe follows. All are timed round by round in turn. Prints
the times and the ratios scope / forward.

    python benchmarks/linearscope_overhead.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import convforge
from convforge.explain import LinearScope
from convforge.tables import text_table

MODELS = [("timm:resnet18", (3, 224, 224)), ("timm:mobilenetv3_small_100", (3, 224, 224)),
          ("simplenet_cifar_310k", (3, 32, 32)), ("resnet20", (3, 32, 32))]  # fmt: skip


def interleaved_ms(calls: dict[str, object], rounds: int, warmup: int = 3) -> dict[str, float]:
    """Median ms of each call, timed round by round in turn so that machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(warmup + rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def measure(name: str, shape: tuple[int, ...], rounds: int) -> dict[str, float]:
    """Median ms of plain forwards of batch 1, 2, 3 and of scope calls with 1 and 9 probes."""
    model = convforge.create_model(name).eval()
    scope = LinearScope(model)
    x0, probes = torch.randn(1, *shape), torch.randn(9, *shape)
    batches = {b: torch.randn(b, *shape) for b in (1, 2, 3)}
    calls = {f"forward {b}": (lambda b=b: model(batches[b])) for b in batches}
    calls.update({"scope 1": lambda: scope(x0, probes[:1], bias=False), "scope 1 + c": lambda: scope(x0, probes[:1]),
                  "scope 9": lambda: scope(x0, probes, bias=False)})  # fmt: skip
    with torch.no_grad():
        return interleaved_ms(calls, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows = []
    torch.manual_seed(0)
    for name, shape in MODELS:
        ms = measure(name, shape, args.rounds)
        floor, one, with_c = ms["forward 1"], ms["scope 1"], ms["scope 1 + c"]
        per_probe = (ms["scope 9"] - one) / 8
        rows.append((name, f"{floor:.1f}", f"{ms['forward 2']:.1f}", f"{ms['forward 3']:.1f}", f"{one:.1f}",
                     f"{one / floor:.2f}", f"{one / ms['forward 2']:.2f}", f"{with_c:.1f}", f"{with_c / floor:.2f}",
                     f"{per_probe:.1f}", f"{per_probe / floor:.2f}"))  # fmt: skip
    print(f"median of {args.rounds}, {torch.get_num_threads()} threads, float32, CPU")
    print(text_table(["model", "fwd b1 ms", "fwd b2 ms", "fwd b3 ms", "scope 1 probe ms", "scope/fwd b1",
                      "scope/fwd b2", "scope+c ms", "scope+c/fwd b1", "per extra probe ms", "probe/fwd b1"],
                     rows))  # fmt: skip


if __name__ == "__main__":
    main()
