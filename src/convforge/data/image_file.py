"""Reading one image file as a tensor."""

from __future__ import annotations

from pathlib import Path

import torch

from convforge.errors import ConvforgeError


def drop_alpha(image: torch.Tensor) -> torch.Tensor:
    """A C×H×W image without its alpha channel (grey+alpha → grey, RGBA → RGB)."""
    return image[:-1] if image.shape[-3] in (2, 4) else image


def read_image(path: str | Path) -> torch.Tensor:
    """An image file (PNG, JPEG, BMP, ...) as a uint8 C×H×W tensor: grey or RGB, any alpha channel dropped.

    16-bit images are brought to 8 bits (value / 257, rounded)."""
    from torchvision.io import ImageReadMode, decode_image

    path = Path(path)
    if not path.is_file():
        raise ConvforgeError(f"image {path} does not exist")
    try:
        image = decode_image(str(path), mode=ImageReadMode.UNCHANGED)
    except (RuntimeError, ValueError, OSError) as err:
        raise ConvforgeError(f"could not read {path} as an image: {err}") from err
    if image.dtype == torch.uint16:
        image = image.to(torch.int32).add(128).div(257, rounding_mode="floor").to(torch.uint8)
    elif image.dtype != torch.uint8:
        raise ConvforgeError(f"{path} has {image.dtype} pixels; convforge reads 8- and 16-bit images")
    return drop_alpha(image)
