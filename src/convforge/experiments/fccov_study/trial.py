"""One trial of the FCCov simulation study: one design, one replicate, every method on the same samples.

FCCov-Net and the deep distance-covariance baseline train ``sdr_mlp`` through the engine (``--task sdr``),
which validates on a held-out sample of its own; the study scores the **last** epoch's network on the test
sample (the same for every method), so no checkpoint is chosen on anything the study reports. SIR and SAVE
slice a scalar response and run on the Euclidean designs only; WIRE and
GSIR use the responses' distances and run on all. Every method reduces to the design's dimension d, and is scored
by the distance correlation between its reduction of the test X and the true index; where the truth is linear
the linear methods also get the subspace distance ‖P_B̂ − P_B‖_F.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from convforge.sdr.distance_correlation import distance_correlation
from convforge.sdr.kernel_baseline import gsir
from convforge.sdr.linear_baselines import save, sir, subspace_distance, wire
from convforge.sdr.response_metrics import get_metric
from convforge.sdr.simulations import simulate
from convforge.tasks.sdr.sources import VALIDATION_SEED

GSIR_TRAIN = 1000  # GSIR's Gram matrices are n × n: it uses up to this many training examples


def _engine(config: dict[str, Any], out: str, objective: str) -> torch.nn.Module:
    from convforge.engine.trainer import train

    result = train("sdr_mlp", f"sim:{config['design']}", task="sdr", objective=objective, dim=config["dim"],
                   mu=config["mu"], epochs=config["epochs"], lr=config["lr"], batch_size=config["batch"],
                   passes=config["passes"], train_size=config["n"], val_size=config["n"], seed=config["rep"],
                   project=str(Path(out) / "trials"), name=f"{config['key']}-{objective}", progress=False)  # fmt: skip
    return result.model.eval()


def run_one(config: dict[str, Any], out: str) -> dict[str, Any]:
    """Every method on one (design, replicate): dCor with the true index (and subspace distances)."""
    design, d = config["design"], config["dim"]
    train = simulate(design, config["n"], config["rep"])
    test = simulate(design, config["n"], config["rep"] + VALIDATION_SEED, corrupt=False)
    distances = get_metric(train.metric)(train.y)
    scores: dict[str, Any] = {"raw_x_dcor": float(distance_correlation(test.x, test.truth))}
    for objective in ("fccov", "dcov"):
        network = _engine(config, out, objective)
        with torch.no_grad():
            reduced = network(test.x.float()).double()
        scores[f"{objective}_dcor"] = float(distance_correlation(reduced, test.truth))
    linear = {"wire": wire(train.x, distances, d)}
    if train.y.dim() == 2 and train.y.shape[1] == 1:
        linear["sir"], linear["save"] = sir(train.x, train.y[:, 0], d), save(train.x, train.y[:, 0], d)
    for name, reduction in linear.items():
        scores[f"{name}_dcor"] = float(distance_correlation(reduction.transform(test.x), test.truth))
        if test.basis is not None:
            scores[f"{name}_subspace"] = subspace_distance(reduction.basis, test.basis)
    part = slice(0, min(GSIR_TRAIN, len(train.x)))
    kernel = gsir(train.x[part], distances[part, part], d)
    scores["gsir_dcor"] = float(distance_correlation(kernel.transform(test.x), test.truth))
    return scores
