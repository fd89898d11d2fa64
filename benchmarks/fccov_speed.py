"""FCCov: the sorted-prefix-sum estimator against the O(n³) definition, in one run.

Both compute FCCov_n of features [n, d] and a distance matrix [n, n] with ties, in float64; the values are checked
equal before timing. The brute force builds an n × n × n indicator, so its memory grows as n³ (1,000: 8 GB in
float64); ``--max-brute`` caps the n it is run at.

    .venv/bin/python benchmarks/fccov_speed.py --sizes 250,500,1000 --dim 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from convforge.sdr import euclidean, fccov, fccov_bruteforce


def _time(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000")
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-brute", type=int, default=1000)
    args = parser.parse_args()
    print(f"FCCov_n, d = {args.dim}, float64, {torch.get_num_threads()} threads; median ms of {args.repeats} runs")
    print(f"{'n':>6} {'brute force ms':>15} {'convforge ms':>13} {'ratio':>8}")
    for n in (int(s) for s in args.sizes.split(",")):
        g = torch.Generator().manual_seed(n)
        features = torch.randn(n, args.dim, generator=g, dtype=torch.float64)
        distances = euclidean(torch.randint(0, 20, (n, 2), generator=g).double())  # many ties
        fast = _time(lambda f=features, dd=distances: fccov(f, dd), args.repeats)
        if n <= args.max_brute:
            assert abs(float(fccov(features, distances)) - float(fccov_bruteforce(features, distances))) < 1e-10
            brute = _time(lambda f=features, dd=distances: fccov_bruteforce(f, dd), max(1, args.repeats // 2))
            print(f"{n:>6} {brute:>15.1f} {fast:>13.2f} {brute / fast:>7.0f}×")
        else:
            print(f"{n:>6} {'(not run)':>15} {fast:>13.2f} {'':>8}")


if __name__ == "__main__":
    main()
