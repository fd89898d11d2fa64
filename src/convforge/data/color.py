"""BT.601 YCbCr as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` define it (studio range: Y 16–235, Cb/Cr 16–240).

Values are on the 0–1 scale (the 0–255 values divided by 255). Super-resolution models
see Y; the chroma of an upscaled image is resized bicubically.
"""

from __future__ import annotations

import torch

from convforge.errors import InvalidValueError

_FORWARD = torch.tensor([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255
_OFFSET = torch.tensor([16.0, 128.0, 128.0]) / 255


def _as_float(image: torch.Tensor) -> torch.Tensor:
    return image.float() / 255 if image.dtype == torch.uint8 else image.float()


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """RGB (uint8 0–255 or float 0–1, …×3×H×W) → YCbCr, float 0–1."""
    x = _as_float(image)
    if x.shape[-3] != 3:
        raise InvalidValueError(f"rgb_to_ycbcr needs 3 channels, got {x.shape[-3]}")
    return torch.einsum("ij,...jhw->...ihw", _FORWARD.to(x), x) + _OFFSET.to(x).view(3, 1, 1)


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """YCbCr (float 0–1, …×3×H×W) → RGB float 0–1, not clipped."""
    x = image.float()
    if x.shape[-3] != 3:
        raise InvalidValueError(f"ycbcr_to_rgb needs 3 channels, got {x.shape[-3]}")
    inverse = torch.linalg.inv(_FORWARD.double()).to(x)
    return torch.einsum("ij,...jhw->...ihw", inverse, x - _OFFSET.to(x).view(3, 1, 1))


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """The Y channel (…×1×H×W, float 0–1) of an RGB image; a one-channel image is returned as it is (0–1)."""
    x = _as_float(image)
    if x.shape[-3] == 1:
        return x
    if x.shape[-3] != 3:
        raise InvalidValueError(f"rgb_to_y needs 1 or 3 channels, got {x.shape[-3]}")
    return rgb_to_ycbcr(x).narrow(-3, 0, 1)
