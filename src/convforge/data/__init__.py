"""Datasets by name, resolved from the user's folders, and fast in-memory batch iteration."""

from convforge.data.catalog import NAMES, ImageTensors, load_dataset
from convforge.data.tensor_loader import Augment, TensorLoader

__all__ = ["NAMES", "Augment", "ImageTensors", "TensorLoader", "load_dataset"]
