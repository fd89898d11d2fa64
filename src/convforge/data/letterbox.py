"""Letterboxing: resize an image to fit a square, keeping its aspect ratio, and pad the rest with grey."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PAD_VALUE = 114  # the grey of YOLO letterboxes


@dataclass(frozen=True)
class LetterboxGeometry:
    """How an original image maps into the letterbox: ``new = old · ratio + pad`` (pad as x, y)."""

    original_size: tuple[int, int]  # (height, width)
    ratio: float
    pad: tuple[float, float]  # (x, y)

    def to_original(self, boxes: torch.Tensor) -> torch.Tensor:
        """xyxy boxes in letterbox pixels → original-image pixels, clipped to the image."""
        out = boxes.clone()
        out[..., [0, 2]] = (out[..., [0, 2]] - self.pad[0]) / self.ratio
        out[..., [1, 3]] = (out[..., [1, 3]] - self.pad[1]) / self.ratio
        h, w = self.original_size
        out[..., [0, 2]] = out[..., [0, 2]].clamp(0, w)
        out[..., [1, 3]] = out[..., [1, 3]].clamp(0, h)
        return out


def resize_long_side(image: torch.Tensor, size: int) -> tuple[torch.Tensor, float]:
    """A uint8 C×H×W image resized (bilinear, antialiased) so its longer side is ``size``, and the ratio."""
    h, w = image.shape[-2:]
    ratio = size / max(h, w)
    if ratio == 1:
        return image, ratio
    new = (max(1, round(h * ratio)), max(1, round(w * ratio)))
    resized = F.interpolate(image[None].float(), size=new, mode="bilinear", antialias=ratio < 1, align_corners=False)
    return resized[0].round().clamp(0, 255).to(torch.uint8), ratio


def to_rgb(image: torch.Tensor) -> torch.Tensor:
    """A grey image repeated to three channels; RGB unchanged."""
    return image.expand(3, *image.shape[-2:]) if image.shape[0] == 1 else image


def letterbox(image: torch.Tensor, size: int) -> tuple[torch.Tensor, LetterboxGeometry]:
    """The image (uint8 C×H×W) fitted into ``size``×``size``, centred on grey, and how it was placed."""
    original = (int(image.shape[-2]), int(image.shape[-1]))
    resized, ratio = resize_long_side(to_rgb(image), size)
    h, w = resized.shape[-2:]
    top, left = (size - h) // 2, (size - w) // 2
    canvas = torch.full((3, size, size), PAD_VALUE, dtype=torch.uint8)
    canvas[:, top : top + h, left : left + w] = resized
    return canvas, LetterboxGeometry(original, ratio, (float(left), float(top)))
