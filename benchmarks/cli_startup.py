"""How long the command line takes to answer: `convforge --help` and `convforge models PATTERN`, cold and warm.

Each command runs as a fresh program, as a user types it; the baseline in the same run is
`python -c "import torch"`, the floor any command that imports torch pays. The model table's
cache goes to a temporary XDG_CACHE_HOME, so the first `models` call measures (cold) and the
next ones read the cache (warm).

    .venv/bin/python benchmarks/cli_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of ``command``."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pattern", default="resnet*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        cli = [sys.executable, "-m", "convforge"]
        cold = timed([*cli, "models", args.pattern], env)
        rows = {
            "python -c 'import torch' (baseline)": [timed([sys.executable, "-c", "import torch"], env)
                                                    for _ in range(args.repeats)],
            "convforge --help": [timed([*cli, "--help"], env) for _ in range(args.repeats)],
            f"convforge models '{args.pattern}' (warm cache)": [timed([*cli, "models", args.pattern], env)
                                                                for _ in range(args.repeats)],
        }  # fmt: skip
    baseline = statistics.median(next(iter(rows.values())))
    print(f"median of {args.repeats} runs; cold = the first `models` call, which measures and fills the cache")
    print(f"{'command':<48} {'median s':>9} {'/ import torch':>15}")
    print(f"{f'convforge models {args.pattern!r} (cold, once)':<48} {cold:>9.3f} {cold / baseline:>15.2f}")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:<48} {median:>9.3f} {median / baseline:>15.2f}")


if __name__ == "__main__":
    main()
