"""Reading one image file as a tensor."""

from __future__ import annotations

from pathlib import Path

import torch

from convforge.errors import ConvforgeError


def read_image(path: str | Path) -> torch.Tensor:
    """An image file (PNG, JPEG, BMP, ...) as a uint8 C×H×W tensor: grey or RGB, any alpha channel dropped."""
    from torchvision.io import ImageReadMode, decode_image

    path = Path(path)
    if not path.is_file():
        raise ConvforgeError(f"image {path} does not exist")
    try:
        image = decode_image(str(path), mode=ImageReadMode.UNCHANGED)
    except (RuntimeError, ValueError, OSError) as err:
        raise ConvforgeError(f"could not read {path} as an image: {err}") from None
    return image[:-1] if image.shape[0] in (2, 4) else image
