"""Pictures of a network's linear interpreter for one image: what ``convforge explain`` writes.

For a classifier (output N×classes):
- ``input.png``, the image as the network sees it;
- ``votes_<class>.png`` for the predicted class and a chosen one, the per-pixel votes
  (row_k ⊙ x0, summed over channels; red for, blue against);
- ``row_<class>.png``, the row of A for the predicted class, as an image;
- ``bias_share.png``, per class, the logit split into its input part A·x0 and its bias
  part c, with the bias share |c| / (|A·x0| + |c|).

For an image-to-image network (output N×C×H×W, e.g. super-resolution): ``input.png``,
and rows of A for two output pixels (``row_centre.png``, ``row_corner.png``: the filter
applied to the input) and columns for the input pixels under them (``column_*.png``:
the pattern one input pixel paints), each cropped around its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from convforge.errors import ConvforgeError
from convforge.explain.linear_scope import LinearScope, bias_share_of
from convforge.figures import pyplot, save_figure


@dataclass
class Explanation:
    """What was found and which files were written."""

    kind: str  # "classifier" or "image-to-image"
    files: list[Path] = field(default_factory=list)
    predicted: str | None = None
    bias_share: dict[str, float] = field(default_factory=dict)


CROP_RADIUS = 8  # input pixels shown on each side of a row's or column's position


def crop_around(image: torch.Tensor, y: int, x: int, radius: int) -> torch.Tensor:
    """The window of ``image`` (…×H×W) within ``radius`` pixels of (y, x)."""
    return image[..., max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]


def _file_name(label: str) -> str:
    """A class name made safe for a file name ("T-shirt/top" → "T-shirt_top")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "class"


def _show(tensor: torch.Tensor):
    """C×H×W → an array matplotlib shows: grey for one channel, RGB (rescaled to 0–1) for three."""
    image = tensor.detach().float().cpu()
    if image.shape[0] == 1:
        return image[0].numpy(), "gray"
    image = image[:3]
    low, high = image.min(), image.max()
    return ((image - low) / (high - low).clamp_min(1e-12)).permute(1, 2, 0).numpy(), None


def _save_image(tensor: torch.Tensor, path: Path, title: str, signed: bool = False,
                under: torch.Tensor | None = None) -> Path:  # fmt: skip
    """Save a picture of ``tensor``; a ``signed`` map is drawn around zero, over ``under`` (the input, in grey)
    when given, so that each vote sits on the pixel it comes from."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    if signed:  # a map around zero: symmetric colours
        values = tensor.detach().float().cpu()
        if values.dim() == 3:
            values = values.sum(0)
        limit = values.abs().max().item() or 1.0
        overlay = under is not None and tuple(under.shape[-2:]) == tuple(values.shape)
        if overlay:
            background, _ = _show(under)
            ax.imshow(background.mean(-1) if background.ndim == 3 else background, cmap="gray")
        shown = ax.imshow(values.numpy(), cmap="coolwarm", vmin=-limit, vmax=limit, alpha=0.65 if overlay else 1.0)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    else:
        array, cmap = _show(tensor)
        ax.imshow(array, cmap=cmap)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def _bias_chart(linear: torch.Tensor, bias: torch.Tensor, classes: list[str], path: Path, predicted: int) -> Path:
    plt = pyplot()
    count = len(classes)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * count + 2), 4.0))
    positions = range(count)
    ax.bar(positions, linear.tolist(), color="tab:blue", label="input part A·x0")
    ax.bar(positions, bias.tolist(), bottom=[min(v, 0) if b < 0 else max(v, 0) for v, b in zip(linear.tolist(),
           bias.tolist())], color="tab:orange", label="bias part c")  # fmt: skip
    share = bias_share_of(linear, bias)
    for i, s in enumerate(share.tolist()):
        ax.annotate(f"{100 * s:.0f}%", (i, 0), textcoords="offset points", xytext=(0, -12), ha="center", fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(list(positions), classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("logit")
    ax.set_title(f"each logit = A·x0 + c; bias share under the axis (predicted: {classes[predicted]})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def explain_image(
    model: nn.Module,
    x0: torch.Tensor,
    out_dir: str | Path,
    classes: list[str] | None = None,
    target: int | None = None,
    display: torch.Tensor | None = None,
) -> Explanation:
    """Write the pictures for one prepared input ``x0`` (1×C×H×W) into ``out_dir``.

    ``display`` is the image to show as the input (default: ``x0`` itself); ``target`` a
    class to explain besides the predicted one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scope = LinearScope(model)
    with torch.no_grad():
        result = scope(x0, x0)
    output = result.output
    if output.dim() == 2:
        count = output.shape[1]
        names = list(classes) if classes and len(classes) == count else [str(i) for i in range(count)]
        if target is not None and not 0 <= target < count:
            raise ConvforgeError(f"class {target} does not exist; the model has classes 0 to {count - 1}")
        predicted = int(output[0].argmax())
        explanation = Explanation("classifier", predicted=names[predicted])
        explanation.files.append(_save_image(display if display is not None else x0[0], out / "input.png", "input"))
        for k in dict.fromkeys([predicted] + ([target] if target is not None else [])):
            votes = scope.vote_map(x0, k)
            explanation.files.append(
                _save_image(
                    votes,
                    out / f"votes_{_file_name(names[k])}.png",
                    f"votes for {names[k]} (sum {votes.sum():.2f})",
                    True,
                    under=display if display is not None else x0[0],
                )
            )
        row = scope.rows(x0, [predicted])[0]
        title = f"row of A for {names[predicted]}"
        explanation.files.append(
            _save_image(row, out / f"row_{_file_name(names[predicted])}.png", title, signed=row.shape[0] == 1)
        )
        linear, bias = result.linear[0], result.bias[0]
        share = bias_share_of(linear, bias)
        explanation.bias_share = {n: float(s) for n, s in zip(names, share)}
        explanation.files.append(_bias_chart(linear, bias, names, out / "bias_share.png", predicted))
        return explanation
    if output.dim() == 4:
        explanation = Explanation("image-to-image")
        _, _, height, width = output.shape
        in_h, in_w = x0.shape[-2:]
        ratio = max(1, round(height / in_h))
        if display is not None or x0.shape[1] in (1, 3):
            explanation.files.append(_save_image(display if display is not None else x0[0], out / "input.png", "input"))
        for name, (y, x) in {"centre": (height // 2, width // 2), "corner": (height // 4, width // 4)}.items():
            index = y * width + x  # first output channel
            iy, ix = y * in_h // height, x * in_w // width
            row = crop_around(scope.rows(x0, [index])[0], iy, ix, CROP_RADIUS)
            title = f"row of A at output ({y}, {x}), input around ({iy}, {ix})"
            explanation.files.append(_save_image(row, out / f"row_{name}.png", title, True))
            column = crop_around(scope.columns(x0, [iy * in_w + ix])[0], y, x, CROP_RADIUS * ratio)
            title = f"column of A at input ({iy}, {ix}), output around ({y}, {x})"
            explanation.files.append(_save_image(column, out / f"column_{name}.png", title, True))
        return explanation
    raise ConvforgeError(f"explain handles classifiers (N×classes) and image-to-image models, not outputs of shape "
                         f"{tuple(output.shape)}")  # fmt: skip
