"""``convforge.upscale``: enlarge an image file with a trained super-resolution model.

The luma goes through the model; the chroma (Cb, Cr) is enlarged by bicubic resizing,
as SR papers do; the result is written back as RGB (or grey for a grey image).
"""

from __future__ import annotations

from pathlib import Path

import torch

from convforge.atomic import write_atomic
from convforge.data.color import rgb_to_ycbcr, ycbcr_to_rgb
from convforge.data.image_file import read_image
from convforge.data.resize import imresize
from convforge.errors import ConvforgeError
from convforge.field_checks import env_limit
from convforge.output_files import check_output_file
from convforge.runs.loading import TrainedModel, trained_model

TASK = "sr"
DEFAULT_MAX_SR_PIXELS = 1 << 23  # input pixels of one pass: 8.4 M, a 3840x2160 frame; about 2 GB per 56-channel map
WRITABLE = (".png", ".jpg", ".jpeg")


def writable_path(path: str | Path) -> Path:
    """``path`` if its suffix names a format convforge writes, else a clear error."""
    path = Path(path)
    if path.suffix.lower() not in WRITABLE:
        raise ConvforgeError(f"cannot write {path.name}: use a file name ending in {', '.join(WRITABLE)}")
    return path


def write_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write a float 0–1 C×H×W image as PNG or JPEG (by the file's suffix), clipped and rounded to 8 bits."""
    from torchvision.io import write_jpeg, write_png

    path = writable_path(path)
    pixels = image.clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    writer = write_png if path.suffix.lower() == ".png" else write_jpeg
    return write_atomic(path, lambda tmp: writer(pixels, str(tmp)))


@torch.no_grad()
def upscale_tensor(model: torch.nn.Module, image: torch.Tensor, scale: int) -> torch.Tensor:
    """An RGB or grey uint8 C×H×W image enlarged by ``scale``: luma by ``model``, chroma bicubic; float 0–1. An
    image above ``CONVFORGE_MAX_SR_PIXELS`` input pixels is refused before its activations are allocated."""
    pixels, limit = image.shape[-2] * image.shape[-1], env_limit("CONVFORGE_MAX_SR_PIXELS", DEFAULT_MAX_SR_PIXELS)
    if pixels > limit:
        raise ConvforgeError(f"the image has {pixels:,} pixels, more than the {limit:,} a super-resolution model "
                             "enlarges in one pass (4K UHD fits); crop it, or set CONVFORGE_MAX_SR_PIXELS to raise "
                             "the limit")  # fmt: skip
    device = next(model.parameters()).device
    if image.shape[0] == 1:
        return model(image.float().div(255)[None].to(device))[0].clamp(0, 1).cpu()
    ycbcr = rgb_to_ycbcr(image)
    luma = model(ycbcr[None, :1].to(device))[0].clamp(0, 1).cpu()
    chroma = imresize(ycbcr[1:], float(scale))
    if chroma.shape[-2:] != luma.shape[-2:]:
        raise ConvforgeError(f"the model made a {tuple(luma.shape[-2:])} image from {tuple(image.shape[-2:])}; "
                             f"expected ×{scale}")  # fmt: skip
    return ycbcr_to_rgb(torch.cat([luma, chroma])).clamp(0, 1)


def upscale(checkpoint: str | Path | TrainedModel, source: str | Path, target: str | Path,
            overwrite: bool = False) -> Path:  # fmt: skip
    """Enlarge the image file ``source`` with a trained SR run or checkpoint and write it to ``target``; an
    existing file there is replaced only with ``overwrite``, and never a checkpoint."""
    check_output_file(writable_path(target), overwrite)
    trained = trained_model(checkpoint, TASK)
    scale = int(trained.config["recipe"]["scale"])
    return write_image(upscale_tensor(trained.model.float().eval(), read_image(source), scale), target)
