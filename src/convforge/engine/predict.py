"""``convforge.predict``: run a trained classifier on image files."""

from __future__ import annotations

from pathlib import Path

from convforge.data.image_file import read_image
from convforge.engine.loading import load_trained
from convforge.errors import ConvforgeError
from convforge.tasks.classification import prepare_image, top_classes


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
