"""The device a ``--device`` value names: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

``cuda`` alone means this process's GPU (its local rank under ``torchrun``, else 0), as in
Ultralytics and timm. Asking for a GPU the machine does not have is one sentence, not
PyTorch's driver error.
"""

from __future__ import annotations

import torch

from convforge.errors import InvalidValueError

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(value: str, local_rank: int = 0) -> torch.device:
    """The ``torch.device`` for ``value`` on this machine; ``auto`` is the GPU when there is one, else the CPU."""
    text = str(value).strip().lower()
    if text == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise InvalidValueError(f"device {value!r} is not one convforge knows; use {CHOICES}")
    if not torch.cuda.is_available():
        raise InvalidValueError(f"device {value!r} asks for a GPU, but PyTorch finds none on this machine; use "
                                "--device cpu (or auto, which takes a GPU only when there is one)")  # fmt: skip
    number = int(index) if index else local_rank
    count = torch.cuda.device_count()
    if number >= count:
        raise InvalidValueError(f"device {value!r} asks for GPU {number}, but this machine has {count} "
                                f"(cuda:0 to cuda:{count - 1})")  # fmt: skip
    return torch.device("cuda", number)


def check_device_name(value: str) -> None:
    """Refuse a ``--device`` value that names no device kind convforge knows (checked before any data is read)."""
    text = str(value).strip().lower()
    kind, _, index = text.partition(":")
    if text not in ("auto", "cpu") and (kind != "cuda" or (index and not index.isdigit())):
        raise InvalidValueError(f"device {value!r} is not one convforge knows; use {CHOICES}")
