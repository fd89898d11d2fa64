"""FCCov-Net on real images: each image rotated by a random angle θ, the response the point (cos θ, sin θ) on the
circle under the geodesic metric, d = 2.

This is convforge's own design (the paper's JAFFE data is not available here). A small ResNet-type CNN
(``resnet20``, one input channel, a 2-dimensional head) is trained with FCCov-Net's objective and with the deep
distance-covariance baseline through the engine (``--task sdr --data rotated:mnist``); PCA of the pixels to 2
dimensions is the unsupervised reference. Each is scored by dCor between its 2-D reduction of the test images
and (cos θ, sin θ), and drawn as a scatter of the test reductions coloured by θ.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from convforge.sdr.distance_correlation import distance_correlation
from convforge.tasks.sdr.sources import load_sdr_data


def _reduce(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(images[i : i + 500]) for i in range(0, len(images), 500)]).double()


def run_image_application(out: Path, dataset: str = "mnist", train_images: int = 10_000, test_images: int = 2_000,
                          epochs: int = 20, data_root: str | None = None,
                          model: str = "resnet20") -> dict[str, Any]:  # fmt: skip
    """Train and score FCCov-Net, deep dCov and PCA on rotated ``dataset``; write ``rotated_scatter.png``."""
    from types import SimpleNamespace

    from convforge.engine.trainer import train

    source = f"rotated:{dataset}"
    recipe = SimpleNamespace(seed=0, data_root=data_root, train_subset=train_images, val_subset=test_images)
    data = load_sdr_data(source, recipe, 0, 0)
    test_x, truth = data.test.x, data.test.truth  # the test split: the networks never validated on it
    reductions: dict[str, torch.Tensor] = {}
    for objective, label in (("fccov", "FCCov-Net"), ("dcov", "deep dCov")):
        result = train(model, source, task="sdr", objective=objective, dim=2, epochs=epochs, batch_size=250, lr=2e-3,
                       passes=1, train_subset=train_images, val_subset=test_images, data_root=data_root,
                       project=str(out / "trials"), name=f"rotated-{dataset}-{objective}", progress=False)  # fmt: skip
        reductions[label] = _reduce(result.model, test_x)
    flat = data.train.x.flatten(1).double()
    mean = flat.mean(0)
    _, _, v = torch.pca_lowrank(flat - mean, q=2, center=False)
    reductions["PCA of pixels"] = (test_x.flatten(1).double() - mean) @ v[:, :2]
    scores = {name: float(distance_correlation(r, truth)) for name, r in reductions.items()}
    picture = _scatter(reductions, truth, out / "report" / "rotated_scatter.png", dataset)
    return {"dcor": scores, "picture": str(picture), "train_images": train_images, "test_images": test_images,
            "epochs": epochs}  # fmt: skip


def _scatter(reductions: dict[str, torch.Tensor], truth: torch.Tensor, path: Path, dataset: str) -> Path:
    from convforge.figures import pyplot, save_figure

    angle = torch.atan2(truth[:, 1], truth[:, 0]) % (2 * math.pi)
    fig, axes = pyplot().subplots(1, len(reductions), figsize=(4 * len(reductions), 4), constrained_layout=True)
    for ax, (name, values) in zip(axes, reductions.items()):
        points = ax.scatter(values[:, 0], values[:, 1], c=angle, cmap="hsv", s=4, vmin=0, vmax=2 * math.pi)
        ax.set_title(f"{name}: dCor {float(distance_correlation(values, truth)):.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes, label="rotation θ (radians)")
    fig.suptitle(f"Rotated {dataset} test images: the learned 2-D reduction, coloured by θ", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)
