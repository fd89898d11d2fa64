"""Reading one image file as a tensor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from convforge.errors import ConvforgeError
from convforge.field_checks import env_limit


def drop_alpha(image: torch.Tensor) -> torch.Tensor:
    """A C×H×W image without its alpha channel (grey+alpha → grey, RGBA → RGB)."""
    return image[:-1] if image.shape[-3] in (2, 4) else image


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # what read_image decodes
DEFAULT_MAX_PIXELS = 100_000_000  # about PIL's decompression-bomb limit
DIRECT_MODES = ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L")  # decoded as they are; others through PIL


def max_pixels() -> int:
    """The most pixels an image may have: ``CONVFORGE_MAX_PIXELS``, else 100 million."""
    return env_limit("CONVFORGE_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def _header(path: Path) -> tuple[int, int, str] | None:
    """Width, height and PIL mode from the file's header, without decoding it; None if PIL cannot tell. PIL's own
    decompression-bomb check is off while the header is read: convforge's limit applies instead."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            return image.width, image.height, image.mode
    except Exception:  # noqa: BLE001 - a format PIL does not know: torchvision decides
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


class ImageReadError(ConvforgeError):
    """An image file that is missing, too large, truncated or not an image; the message names the file."""


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width * height > max_pixels():
        raise ImageReadError(f"{path} is {width}×{height} pixels, more than the limit of {max_pixels():,} (set "
                             "CONVFORGE_MAX_PIXELS to raise it)")  # fmt: skip


def open_rgb(path: str | Path) -> Any:
    """An image file as an RGB PIL image, for torchvision's ImageFolder: refused above the pixel limit before it
    is decoded, and a truncated or unreadable file is one sentence naming it."""
    from PIL import Image

    header = _header(Path(path))
    if header is not None:
        _check_pixels(Path(path), header[0], header[1])
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # convforge's limit applies instead
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as err:  # PIL reports broken files with all three
        raise ImageReadError(f"could not read {path} as an image: {err}") from err
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _through_pil(path: Path) -> torch.Tensor:
    """Palette, CMYK, 1-bit and other modes converted as PIL converts them, to RGB (or grey for 1-bit)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        converted = image.convert("L" if image.mode in ("1", "I", "F") else "RGB")
        return torch.from_numpy(np.array(converted)).reshape(converted.height, converted.width, -1).permute(2, 0, 1)


def decoder_reason(err: BaseException) -> str:
    """The reason in a decoder's error, without the C++ function, source file and line torchvision prefixes it
    with (``decode_png, /__w/vision/.../decode_png.cpp:79, Out of bound read``)."""
    parts = [p.strip() for p in str(err).split(",")]
    source = [i for i, p in enumerate(parts) if re.search(r"\.(cpp|cc|c|h)(:\d+)?$", p)]
    kept = parts[source[-1] + 1 :] if source else parts  # the function and the source file come first
    return ", ".join(kept) or "the file is not an image convforge can decode"


def read_image(path: str | Path) -> torch.Tensor:
    """An image file (PNG, JPEG, BMP, ...) as a uint8 C×H×W tensor: grey or RGB, any alpha channel dropped.

    16-bit images are brought to 8 bits (value / 257, rounded); palette and other modes are converted as
    PIL converts them. An image of more than ``CONVFORGE_MAX_PIXELS`` pixels is refused before decoding."""
    from torchvision.io import ImageReadMode, decode_image

    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, not an image file")
    if not path.is_file():
        raise ImageReadError(f"image {path} does not exist")
    header = _header(path)
    if header is not None:
        width, height, mode = header
        _check_pixels(path, width, height)
        if mode not in DIRECT_MODES:
            try:
                return drop_alpha(_through_pil(path))
            except (OSError, ValueError) as err:
                raise ImageReadError(f"could not read {path} as an image: {err}") from err
    try:
        image = decode_image(str(path), mode=ImageReadMode.UNCHANGED)
    except (RuntimeError, ValueError, OSError) as err:
        raise ImageReadError(f"could not read {path} as an image: {decoder_reason(err)}") from err
    if image.dtype == torch.uint16:
        image = image.to(torch.int32).add(128).div(257, rounding_mode="floor").to(torch.uint8)
    elif image.dtype != torch.uint8:
        raise ConvforgeError(f"{path} has {image.dtype} pixels; convforge reads 8- and 16-bit images")
    return drop_alpha(image)
