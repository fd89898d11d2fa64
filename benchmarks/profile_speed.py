"""Profiling speed: convforge against fvcore and ultralytics-thop on the same timm models, in one run.

For each model the three counters run on the same model and input; each is timed
``--repeats`` times and the median is kept. Prints the time per model for each tool,
the ratios to convforge, the time of a bare forward pass (the floor every counter
pays), and the MACs each reports (fvcore's products, thop's total).

    python benchmarks/profile_speed.py [--size 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import thop
import timm
import torch
from fvcore.nn import FlopCountAnalysis

import convforge
from convforge.tables import human_count, text_table

MODELS = [
    "resnet18",
    "resnet50",
    "resnext26ts",
    "densenet121",
    "vgg11",
    "repvgg_a0",
    "mobilenetv2_100",
    "mobilenetv3_large_100",
    "efficientnet_b0",
    "mnasnet_100",
    "ghostnet_100",
    "lcnet_100",
    "regnetx_002",
    "regnety_004",
    "convnext_atto",
    "convnext_tiny",
    "edgenext_xx_small",
    "poolformer_s12",
    "vit_tiny_patch16_224",
    "deit_small_patch16_224",
    "mixer_s16_224",
    "levit_128s",
]
FVCORE_PRODUCTS = {"conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum", "baddbmm"}


def timed(fn, repeats: int, *args) -> tuple[float, object]:
    """Median seconds of ``fn(*args)`` over ``repeats`` calls, and its last value."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def bare_forward(model, x) -> None:
    with torch.no_grad():
        model(x)


def thop_total(model, x) -> float:
    return thop.profile(model, (x,), verbose=False)[0]


def fvcore_products(model, x) -> int:
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return sum(v for k, v in analysis.by_operator().items() if k in FVCORE_PRODUCTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per tool and model (median kept)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.manual_seed(0)

    rows, totals = [], {"forward": 0.0, "convforge": 0.0, "fvcore": 0.0, "thop": 0.0}
    for name in MODELS:
        model = timm.create_model(name, pretrained=False).eval()
        x = torch.randn(1, 3, args.size, args.size)
        bare_forward(model, x)  # first-call warm-up, shared by all tools
        t_fw, _ = timed(bare_forward, args.repeats, model, x)
        t_cf, ours = timed(convforge.profile, args.repeats, model, x)
        t_fv, fv = timed(fvcore_products, args.repeats, model, x)
        t_th, th = timed(thop_total, args.repeats, model, x)
        totals["forward"] += t_fw
        totals["convforge"] += t_cf
        totals["fvcore"] += t_fv
        totals["thop"] += t_th
        rows.append(
            (
                name,
                f"{t_fw * 1e3:.0f}",
                f"{t_cf * 1e3:.0f}",
                f"{t_fv * 1e3:.0f}",
                f"{t_th * 1e3:.0f}",
                f"{t_fv / t_cf:.2f}",
                f"{t_th / t_cf:.2f}",
                human_count(ours.macs),
                human_count(fv),
                human_count(ours.macs_by_convention["thop"]),
                human_count(th),
            )
        )
        print(f"done {name}", flush=True)
    headers = ["model", "forward ms", "convforge ms", "fvcore ms", "thop ms", "fvcore/cf", "thop/cf",
               "cf macs", "fvcore", "cf thop", "thop"]  # fmt: skip
    print(f"\ninput 1x3x{args.size}x{args.size}, median of {args.repeats}, {torch.get_num_threads()} threads\n")
    print(text_table(headers, rows))
    cf = totals["convforge"]
    parts = [f"{tool} {t:.2f} s ({t / cf:.2f}x convforge)" for tool, t in totals.items()]
    print("\ntotal: " + ", ".join(parts))


if __name__ == "__main__":
    main()
