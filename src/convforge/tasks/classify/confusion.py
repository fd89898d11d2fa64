"""Where a classifier goes wrong: the confusion matrix, per-class accuracy, and their picture."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from convforge.figures import pyplot, save_figure
from convforge.tables import text_table

ANNOTATED_CLASSES = 20  # above this many classes the cells carry no numbers


@torch.no_grad()
def confusion_matrix(model: nn.Module, batches: Iterable, device: torch.device, num_classes: int) -> torch.Tensor:
    """Counts ``[true class, predicted class]`` over every example of ``batches`` (int64, num_classes²)."""
    counts = torch.zeros(num_classes * num_classes, dtype=torch.int64)
    for images, labels in batches:
        predicted = model(images.to(device)).float().argmax(1).cpu()
        keep = (labels >= 0) & (labels < num_classes) & (predicted < num_classes)
        counts += torch.bincount(labels[keep] * num_classes + predicted[keep], minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def class_names(classes: list[str] | None, count: int) -> list[str]:
    """The run's class names, or their indices where it recorded none."""
    names = list(classes or [])
    return names + [str(i) for i in range(len(names), count)] if len(names) < count else names[:count]


def per_class_table(matrix: torch.Tensor, classes: list[str]) -> str:
    """One row per class: its examples, accuracy (%), and the class it is most often mistaken for."""
    rows = []
    for k, name in enumerate(classes):
        total = int(matrix[k].sum())
        wrong = matrix[k].clone()
        wrong[k] = 0
        confused = int(wrong.argmax()) if int(wrong.sum()) else None
        rows.append((name, f"{total:,}", f"{100 * int(matrix[k, k]) / total:.2f} %" if total else "–",
                     f"{classes[confused]} ({int(wrong[confused]):,})" if confused is not None else "–"))  # fmt: skip
    return text_table(["class", "examples", "accuracy", "most often taken for"], rows, align="lrrl")


def per_class_csv(matrix: torch.Tensor, classes: list[str]) -> str:
    """The per-class counts and accuracy as CSV."""
    lines = ["class,examples,correct,accuracy_percent"]
    for k, name in enumerate(classes):
        total, correct = int(matrix[k].sum()), int(matrix[k, k])
        accuracy = f"{100 * correct / total:.4f}" if total else ""
        lines.append(f'"{name.replace(chr(34), chr(39))}",{total},{correct},{accuracy}')
    return "\n".join(lines) + "\n"


def plot_confusion(matrix: torch.Tensor, classes: list[str], path: str | Path, title: str = "",
                   totals: bool = True) -> Path:  # fmt: skip
    """The confusion matrix with each true class's row normalised to 1, as Ultralytics draws it; ``totals`` puts
    the example count and top-1 accuracy in the title (a classifier's)."""
    plt = pyplot()
    rows = matrix.double()
    shares = rows / rows.sum(1, keepdim=True).clamp_min(1)
    n = len(classes)
    side = min(max(5.0, 0.45 * n + 2), 16.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046, label="share of the true class")
    if n <= ANNOTATED_CLASSES:
        ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), classes, fontsize=8)
        for i in range(n):
            for j in range(n):
                if shares[i, j] >= 0.005:
                    ax.text(j, i, f"{shares[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = 100 * float(matrix.diagonal().sum()) / max(int(matrix.sum()), 1)
    summary = f"{int(matrix.sum()):,} examples, top-1 {accuracy:.2f} %" if totals else "confusion matrix"
    ax.set_title(f"{title + ': ' if title else ''}{summary}")
    fig.tight_layout()
    return save_figure(fig, path)
