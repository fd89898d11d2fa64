"""Cost of a LinearScope call against a plain forward pass, in the same process.

For each model: the median time of a plain forward of batch 1 (the floor), of plain
forwards of batch 2 and 3 (what the batch alone costs), of one scope call with one
probe (which returns F(x0), A·x1 and c(x0): a batch of 3), and of a scope call with 9
probes, from which the cost per extra probe follows. Prints the times and the ratio
scope / forward.

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


def median_ms(fn, rounds: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows = []
    torch.manual_seed(0)
    for name, shape in MODELS:
        model = convforge.create_model(name).eval()
        scope = LinearScope(model)
        x0, probes = torch.randn(1, *shape), torch.randn(9, *shape)
        with torch.no_grad():
            forward = {b: median_ms(lambda b=b: model(torch.randn(b, *shape)), args.rounds) for b in (1, 2, 3)}
            one = median_ms(lambda: scope(x0, probes[:1]), args.rounds)
            nine = median_ms(lambda: scope(x0, probes), args.rounds)
        per_probe = (nine - one) / 8
        rows.append((name, f"{forward[1]:.1f}", f"{forward[2]:.1f}", f"{forward[3]:.1f}", f"{one:.1f}",
                     f"{one / forward[1]:.2f}", f"{one / forward[3]:.2f}", f"{per_probe:.1f}",
                     f"{per_probe / forward[1]:.2f}"))  # fmt: skip
    print(f"median of {args.rounds}, {torch.get_num_threads()} threads, float32, CPU")
    print(text_table(["model", "fwd b1 ms", "fwd b2 ms", "fwd b3 ms", "scope 1 probe ms", "scope/fwd b1",
                      "scope/fwd b3", "per extra probe ms", "probe/fwd b1"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
