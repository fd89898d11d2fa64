"""A tour of trained networks through their linear interpreters (LinearScope).

For classifiers: how much of each logit comes from the bias part c(x0) rather than
from the input through A(x0), over many test images, against the same architecture
untrained; how often c alone already picks the predicted class; and vote maps. For a
super-resolution network: rows and columns of A (the filters applied to the input and
the patterns each input pixel paints), and the leading singular vectors of A.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from convforge.explain.linear_scope import LinearScope, bias_share_of
from convforge.explain.pictures import crop_around
from convforge.figures import pyplot, save_figure
from convforge.progress_bars import hidden
from convforge.tables import markdown_table


@dataclass
class BiasShareSummary:
    """Bias reliance of one classifier over a set of images."""

    name: str
    images: int
    accuracy: float  # % of images classified correctly
    shares: torch.Tensor  # per image: |c_k| / (|A·x0|_k + |c_k|) of the predicted logit k
    bias_picks: float  # % of images where argmax c(x0) is the predicted class
    input_picks: float  # % of images where argmax A(x0)·x0 is the predicted class
    replay_error: float  # largest relative error of A(x0)·x0 + c(x0) against F(x0) over the images

    def row(self) -> list[str]:
        q1, median, q3 = (float(v) for v in torch.quantile(self.shares, torch.tensor([0.25, 0.5, 0.75])))
        spread = f"{100 * q1:.0f}–{100 * q3:.0f} %"
        return [self.name, str(self.images), f"{self.accuracy:.1f} %", f"{100 * median:.0f} %", spread,
                f"{self.bias_picks:.0f} %", f"{self.input_picks:.0f} %", f"{self.replay_error:.1e}"]  # fmt: skip


BIAS_HEADERS = ["model", "images", "top-1", "bias share of the predicted logit (median)", "interquartile range",
                "argmax c = prediction", "argmax A·x0 = prediction", "max replay error"]  # fmt: skip


def bias_share_summary(
    name: str, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, progress: bool = True
) -> BiasShareSummary:
    """Split every predicted logit into A(x0)·x0 and c(x0), image by image (``images`` are model inputs)."""
    scope = LinearScope(model.eval())
    shares, bias_hits, input_hits, correct, error = [], 0, 0, 0, 0.0
    with torch.no_grad():
        for x0, label in tqdm(list(zip(images, labels)), desc=f"bias share {name}", disable=hidden(progress)):
            result = scope(x0[None], x0[None])
            linear, bias, output = result.linear[0], result.bias[0], result.output[0]
            error = max(error, float((result.affine[0] - output).norm() / output.norm()))
            k = int(output.argmax())
            shares.append(float(bias_share_of(linear[k], bias[k])))
            bias_hits += int(bias.argmax()) == k
            input_hits += int(linear.argmax()) == k
            correct += k == int(label)
    n = len(labels)
    return BiasShareSummary(name, n, 100 * correct / n, torch.tensor(shares), 100 * bias_hits / n,
                            100 * input_hits / n, error)  # fmt: skip


def bias_share_plot(summaries: list[BiasShareSummary], path: str | Path) -> Path:
    """Histograms of the per-image bias share of the predicted logit, one per model."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    bins = torch.linspace(0, 1, 26).tolist()
    for summary in summaries:
        ax.hist(summary.shares.numpy(), bins=bins, histtype="step", lw=1.6, label=summary.name)
    ax.set_xlabel("bias share of the predicted logit  |c| / (|A·x0| + |c|)")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _display(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]):
    shown = image * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    shown = shown.clamp(0, 1)
    return (shown[0].numpy(), "gray") if shown.shape[0] == 1 else (shown.permute(1, 2, 0).numpy(), None)


def vote_map_figure(
    name: str,
    model: nn.Module,
    images: torch.Tensor,
    classes: list[str],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    path: str | Path,
) -> Path:
    """Inputs (top) and their per-pixel votes for the predicted class (bottom; red for, blue against)."""
    scope = LinearScope(model.eval())
    plt = pyplot()
    fig, axes = plt.subplots(2, len(images), figsize=(2.1 * len(images), 5.2), squeeze=False)
    for column, x0 in enumerate(images):
        with torch.no_grad():
            result = scope(x0[None], x0[None])
        k = int(result.output[0].argmax())
        votes = scope.vote_map(x0[None], k)
        array, cmap = _display(x0, mean, std)
        axes[0, column].imshow(array, cmap=cmap)
        axes[0, column].set_title(classes[k], fontsize=8)
        limit = float(votes.abs().max()) or 1.0
        axes[1, column].imshow(votes.numpy(), cmap="coolwarm", vmin=-limit, vmax=limit)
        axes[1, column].set_title(f"Σ votes {float(votes.sum()):.1f}, c {float(result.bias[0, k]):.1f}", fontsize=7)
        for ax in axes[:, column]:
            ax.axis("off")
    fig.suptitle(f"{name}: per-pixel votes for the predicted class", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _edge_and_flat_points(image: torch.Tensor, count: int, margin: int) -> list[tuple[int, int]]:
    """``count`` LR pixels on the strongest edges, then ``count`` in the flattest places, apart from each other."""
    gy, gx = torch.gradient(image.double())
    strength = (gx**2 + gy**2).sqrt()
    height, width = image.shape
    inner = torch.full_like(strength, float("nan"))
    window = (slice(margin, height - margin), slice(margin, width - margin))
    inner[window] = strength[window]
    picked: list[tuple[int, int]] = []
    for descending in (True, False):
        order = torch.argsort(torch.nan_to_num(inner, nan=-1.0 if descending else float("inf")).flatten(),
                              descending=descending)  # fmt: skip
        chosen = 0
        for index in order.tolist():
            y, x = divmod(index, width)
            if all(abs(y - py) + abs(x - px) > 2 * margin for py, px in picked):
                picked.append((y, x))
                chosen += 1
                if chosen == count:
                    break
    return picked


@dataclass
class RowsAndColumns:
    """Rows and columns of A(x0) for an SR network at three edge and three flat LR pixels, each cropped."""

    x0: torch.Tensor  # 1×1×h×w LR luma
    scale: int
    points: list[tuple[int, int]]  # LR (y, x): three on edges, then three flat
    rows: torch.Tensor  # per point, the LR window of the row behind the HR pixel at its centre
    columns: torch.Tensor  # per point, the HR window of its column


def rows_and_columns(model: nn.Module, x0: torch.Tensor, scale: int, radius: int = 5) -> RowsAndColumns:
    """Rows (the LR filter behind one HR pixel) and columns (the HR pattern one LR pixel paints) of A(x0)."""
    scope = LinearScope(model.eval())
    width = x0.shape[-1]
    points = _edge_and_flat_points(x0[0, 0], 3, radius)
    centre = scale // 2
    rows = scope.rows(x0, [(y * scale + centre) * width * scale + x * scale + centre for y, x in points])
    columns = scope.columns(x0, [y * width + x for y, x in points])
    row_windows = torch.stack([crop_around(r, y, x, radius) for (y, x), r in zip(points, rows)])
    column_windows = torch.stack(
        [crop_around(c, y * scale + centre, x * scale + centre, radius * scale) for (y, x), c in zip(points, columns)]
    )
    return RowsAndColumns(x0, scale, points, row_windows, column_windows)


def sr_figure(found: RowsAndColumns, path: str | Path) -> Path:
    """The LR input with the six pixels marked, their rows (top) and their columns (bottom)."""
    plt = pyplot()
    count = len(found.points)
    fig, axes = plt.subplots(2, count + 1, figsize=(2.0 * (count + 1), 4.4))
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(found.x0[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    for i, (y, x) in enumerate(found.points):
        axes[0, 0].annotate(str(i + 1), (x, y), color="yellow" if i < 3 else "cyan", fontsize=8, ha="center",
                            va="center", weight="bold")  # fmt: skip
    axes[0, 0].set_title("LR input (1–3 edges, 4–6 flat)", fontsize=7)

    def show(ax, values: torch.Tensor, title: str) -> None:
        values = values.squeeze(0)
        limit = float(values.abs().max()) or 1.0
        ax.imshow(values.numpy(), cmap="coolwarm", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(title, fontsize=7)

    for i, (row, column) in enumerate(zip(found.rows, found.columns)):
        show(axes[0, i + 1], row, f"{i + 1}: row (LR filter)")
        show(axes[1, i + 1], column, f"{i + 1}: column (HR pattern)")
    fig.suptitle(f"×{found.scale} super-resolution network: rows and columns of A(x0)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def row_adaptivity(found: RowsAndColumns) -> dict[str, float]:
    """How much the LR filter behind an HR pixel changes with the content: the mean relative L2 distance of
    the edge rows, and of the flat rows, from the mean flat row."""
    windows = found.rows.flatten(1)
    reference = windows[3:].mean(0)
    distance = ((windows - reference).norm(dim=1) / reference.norm()).tolist()
    return {"edge": sum(distance[:3]) / 3, "flat": sum(distance[3:]) / 3}


def sr_bias_share(model: nn.Module, x0: torch.Tensor) -> dict[str, float]:
    """Over the output pixels of one image: median and 90th percentile of |c| / (|A·x0| + |c|), and the
    relative error of A(x0)·x0 + c(x0) against F(x0)."""
    with torch.no_grad():
        result = LinearScope(model.eval())(x0, x0)
    share = bias_share_of(result.linear[0], result.bias[0]).flatten()
    error = float((result.affine[0] - result.output[0]).norm() / result.output[0].norm())
    return {"median": float(share.median()), "p90": float(torch.quantile(share, 0.9)), "replay_error": error}


def bias_table(summaries: list[BiasShareSummary]) -> str:
    """The bias-share summaries as a markdown table."""
    return markdown_table(BIAS_HEADERS, [s.row() for s in summaries])


def _normalise(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    x = images.float() / 255
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def run_tour(
    classifiers: dict[str, str | Path],
    sr_run: str | Path | None,
    out_dir: str | Path,
    data_root: str | Path | None = None,
    images: int = 500,
    progress: bool = True,
) -> str:
    """Measure trained classifiers (run directories, by display name) and an SR run; write figures.

    Returns the markdown of the tables (also written to ``out_dir/report.md``).
    """
    from convforge.data import load_dataset
    from convforge.data.super_resolution import load_sr_images
    from convforge.model_origin import origin_of
    from convforge.models import rebuild
    from convforge.runs.loading import load_trained

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries, sections = [], []
    for name, run in classifiers.items():
        trained = load_trained(run)
        config = trained.config
        recipe = config["recipe"]
        test = load_dataset(recipe["data"], "test", root=data_root or recipe.get("data_root")).subset(images, seed=0)
        x = _normalise(test.images, tuple(config["mean"]), tuple(config["std"]))
        summaries.append(bias_share_summary(f"{name} (trained)", trained.model.float(), x, test.labels, progress))
        torch.manual_seed(0)
        untrained = rebuild(origin_of(trained.model)).eval()  # as recorded, never from a file the run names
        summaries.append(bias_share_summary(f"{name} (untrained)", untrained, x, test.labels, progress))
        vote_map_figure(name, trained.model.float(), x[:6], test.classes, tuple(config["mean"]), tuple(config["std"]),
                        out / f"votes_{name}.png")  # fmt: skip
    if summaries:
        bias_share_plot(summaries, out / "bias_share.png")
        sections.append("## Bias share of the predicted logit\n\n" + bias_table(summaries))
    if sr_run is not None:
        trained = load_trained(sr_run)
        recipe = trained.config["recipe"]
        scale = int(recipe["scale"])
        val = load_sr_images(recipe["val_data"], scale, root=data_root or recipe.get("data_root"))
        lr = val.lr[min(2, len(val) - 1)]
        top, left = (lr.shape[-2] - 48) // 2, (lr.shape[-1] - 48) // 2
        x0 = lr[None, :, top : top + 48, left : left + 48].contiguous()
        found = rows_and_columns(trained.model.float(), x0, scale)
        sr_figure(found, out / "sr_rows_columns.png")
        share = sr_bias_share(trained.model.float(), x0)
        adaptivity = row_adaptivity(found)
        sections.append(
            f"## Super-resolution ({trained.config['model']} ×{scale}, {val.files[min(2, len(val) - 1)]} LR crop "
            f"48×48)\n\nBias share over output pixels: median {100 * share['median']:.1f} %, 90th percentile "
            f"{100 * share['p90']:.1f} %. Replay error ‖A·x0 + c − F(x0)‖ / ‖F(x0)‖: {share['replay_error']:.1e}."
            f"\n\nRows of A (LR filters) at edge pixels differ from the mean row at flat "
            f"pixels by {100 * adaptivity['edge']:.1f} % (relative L2), rows at flat pixels by "
            f"{100 * adaptivity['flat']:.1f} %."
        )
    text = "\n\n".join(sections) + "\n"
    (out / "report.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    """``python -m convforge.experiments.linear_scope_tour --classifier NAME=RUN … --sr RUN --out DIR``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", action="append", default=[], metavar="NAME=RUN")
    parser.add_argument("--sr", metavar="RUN")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-root")
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args(argv)
    malformed = [item for item in args.classifier if "=" not in item]
    if malformed:
        parser.error(f"--classifier takes NAME=RUN, e.g. ResNet-20=runs/classify/resnet20; got {malformed[0]!r}")
    classifiers = dict(item.split("=", 1) for item in args.classifier)
    print(run_tour(classifiers, args.sr, args.out, args.data_root, args.images))


if __name__ == "__main__":
    main()
