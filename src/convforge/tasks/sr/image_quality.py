"""Image-quality scores for super-resolution: PSNR and SSIM on one channel, with a border shaved."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from convforge.errors import InvalidValueError


def shave(image: torch.Tensor, border: int) -> torch.Tensor:
    """``image`` (…×H×W) without ``border`` pixels on every side."""
    return image[..., border : image.shape[-2] - border, border : image.shape[-1] - border] if border else image


def to_levels(image: torch.Tensor) -> torch.Tensor:
    """A 0–1 image clipped and rounded to the 256 levels of an 8-bit image (as saved PNGs are)."""
    return image.clamp(0, 1).mul(255).round().div(255)


def psnr(prediction: torch.Tensor, target: torch.Tensor, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB of two 0–1 images (…×H×W), ``border`` pixels shaved."""
    mse = F.mse_loss(shave(prediction, border).double(), shave(target, border).double()).item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


WINDOW = 11  # SSIM's Gaussian window side, pixels


def _gaussian_window(size: int = WINDOW, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(prediction: torch.Tensor, target: torch.Tensor, border: int = 0) -> float:
    """Structural similarity (Wang et al. 2004) of two one-channel 0–1 images, ``border`` pixels shaved.

    As the reference MATLAB code: an 11×11 Gaussian window with σ = 1.5, on the 0–255
    scale with K1 = 0.01 and K2 = 0.03, over the valid region, averaged.
    """
    a, b = (shave(image, border).double() * 255 for image in (prediction, target))
    if min(a.shape[-2:]) < WINDOW:
        raise InvalidValueError(
            f"ssim needs at least {WINDOW}×{WINDOW} pixels after shaving {border}, got {tuple(a.shape[-2:])}"
        )
    a, b = a.reshape(1, 1, *a.shape[-2:]), b.reshape(1, 1, *b.shape[-2:])
    window = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    var_a = F.conv2d(a * a, window) - mu_a**2
    var_b = F.conv2d(b * b, window) - mu_b**2
    cov = F.conv2d(a * b, window) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return value.mean().item()
