"""``convforge.predict``: run a trained classifier on image files."""

from __future__ import annotations

from pathlib import Path

from convforge.engine.loading import load_trained
from convforge.errors import ConvforgeError
from convforge.tasks.classification import prepare_image, top_classes


def read_image(path: str | Path):
    """An image file as a uint8 C×H×W tensor (PNG, JPEG, ...)."""
    from torchvision.io import ImageReadMode, decode_image

    path = Path(path)
    if not path.is_file():
        raise ConvforgeError(f"image {path} does not exist")
    try:
        return decode_image(str(path), mode=ImageReadMode.UNCHANGED)
    except (RuntimeError, ValueError) as err:
        raise ConvforgeError(f"could not read {path} as an image: {err}") from None


def predict(checkpoint: str | Path, image: str | Path, top_k: int = 5) -> list[tuple[str, float]]:
    """The ``top_k`` classes a trained classifier gives ``image``, with probabilities (0–1), best first."""
    if top_k < 1:
        raise ConvforgeError(f"top_k must be a positive integer, got {top_k}")
    trained = load_trained(checkpoint)
    config = trained.config
    if config["recipe"]["task"] != "classify":
        raise ConvforgeError(f"{trained.checkpoint} is a {config['recipe']['task']} model; predict handles classifiers")
    kwargs = config.get("model_kwargs") or {}
    channels = int(kwargs.get("in_chans", len(config["mean"])))
    size = tuple(config.get("input_size") or (channels, 32, 32))
    batch = prepare_image(read_image(image), (channels, *size[-2:]), tuple(config["mean"]), tuple(config["std"]))
    return top_classes(trained.model, batch, config.get("classes") or [], top_k)
