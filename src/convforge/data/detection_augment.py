"""Augmentation for detection, moving boxes with the pixels: random scale and translation, flips, colour jitter.

Images are uint8 3×H×W tensors; boxes are ``(n, 4)`` xyxy pixels with ``(n,)`` classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from convforge.data.letterbox import PAD_VALUE


def scale_translate(image: torch.Tensor, boxes: torch.Tensor, size: int, scale: float, translate: float,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Place ``image`` on a ``size``×``size`` grey canvas, zoomed by a factor in [1 − scale, 1 + scale] and shifted
    by up to ``translate``·size from the centre. Returns the canvas, the moved boxes (clipped), and which boxes
    survive (at least 2 pixels a side, 10 % of their zoomed area, aspect ratio under 100)."""
    h, w = image.shape[-2:]
    zoom = 1 + (torch.rand((), generator=generator).item() * 2 - 1) * scale
    shift = (torch.rand(2, generator=generator) * 2 - 1) * translate * size
    new_h, new_w = max(1, round(h * zoom)), max(1, round(w * zoom))
    resized = F.interpolate(image[None].float(), size=(new_h, new_w), mode="bilinear", antialias=zoom < 1,
                            align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)  # fmt: skip
    left = round((size - new_w) / 2 + shift[0].item())
    top = round((size - new_h) / 2 + shift[1].item())
    canvas = torch.full((3, size, size), PAD_VALUE, dtype=torch.uint8)
    src_x0, src_y0 = max(0, -left), max(0, -top)
    dst_x0, dst_y0 = max(0, left), max(0, top)
    width = min(new_w - src_x0, size - dst_x0)
    height = min(new_h - src_y0, size - dst_y0)
    if width > 0 and height > 0:
        canvas[:, dst_y0 : dst_y0 + height, dst_x0 : dst_x0 + width] = resized[
            :, src_y0 : src_y0 + height, src_x0 : src_x0 + width
        ]
    moved = boxes * torch.tensor([new_w / w, new_h / h, new_w / w, new_h / h]) + torch.tensor([left, top, left, top])
    clipped = moved.clone()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clamp(0, size)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clamp(0, size)
    keep = box_candidates(moved, clipped)
    return canvas, clipped, keep


def box_candidates(before: torch.Tensor, after: torch.Tensor, min_side: float = 2, min_area: float = 0.1,
                   max_aspect: float = 100) -> torch.Tensor:  # fmt: skip
    """Boxes still worth training on after clipping: sides ≥ ``min_side`` px, ≥ ``min_area`` of their area, and
    aspect ratio < ``max_aspect``."""
    w0, h0 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w1, h1 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    aspect = torch.maximum(w1 / (h1 + 1e-16), h1 / (w1 + 1e-16))
    return (w1 > min_side) & (h1 > min_side) & (w1 * h1 / (w0 * h0 + 1e-16) > min_area) & (aspect < max_aspect)


def flip_horizontal(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The image mirrored left-right, and its boxes with it."""
    width = image.shape[-1]
    flipped = boxes.clone()
    flipped[:, 0], flipped[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return image.flip(-1), flipped


def jitter_hsv(image: torch.Tensor, gains: tuple[float, float, float], generator: torch.Generator) -> torch.Tensor:
    """Random hue shift (± gains[0] of the colour circle), saturation and value factors (1 ± gains[1], 1 ± gains[2])."""
    hue, saturation, value = ((torch.rand(3, generator=generator) * 2 - 1) * torch.tensor(gains)).tolist()
    if hue:
        image = TF.adjust_hue(image, hue)
    if saturation:
        image = TF.adjust_saturation(image, 1 + saturation)
    if value:
        image = TF.adjust_brightness(image, 1 + value)
    return image
