"""Checkpoints: one safetensors file holding every tensor, plus a JSON sidecar.

``<stem>.safetensors`` holds the model weights (``model.*``), the EMA weights
(``ema.*``), the optimiser's tensors (``optim.<param>.<key>``) and the RNG state
(``rng.torch``). Its header metadata carries the rest as JSON (epoch, metrics,
optimiser hyper-parameters, scheduler state, recipe), so the one atomic rename of
that file is the whole checkpoint. ``<stem>.json`` is the same metadata for people
and tools to read. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from convforge.atomic import write_atomic, write_text_atomic
from convforge.errors import ConvforgeError

FORMAT = "convforge-checkpoint-1"


@dataclass
class Checkpoint:
    """Tensors by group (``model``, ``ema``, ``optim``, ``rng``) and the JSON metadata."""

    tensors: dict[str, dict[str, torch.Tensor]]
    meta: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])


def _optimizer_tensors(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser state_dict into tensors and a JSON-able remainder."""
    tensors, scalars = {}, {}
    for param_id, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_state(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    """Rebuild an optimiser state_dict from :func:`_optimizer_tensors`' parts."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, entries in rest.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(entries)
    return {"state": state, "param_groups": rest["param_groups"]}


def save_checkpoint(
    stem: str | Path,
    model_state: dict[str, torch.Tensor],
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    ema_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``<stem>.safetensors`` atomically, then its ``<stem>.json`` sidecar. Returns the tensor file."""
    stem = Path(stem)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    if ema_state is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema_state.items()})
    meta = dict(meta, format=FORMAT)
    if optimizer is not None:
        optim_tensors, optim_rest = _optimizer_tensors(optimizer.state_dict())
        tensors.update({f"optim.{k}": v for k, v in optim_tensors.items()})
        meta["optimizer"] = optim_rest
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    text = json.dumps(meta, indent=2, default=str)
    target = stem.with_suffix(".safetensors")
    write_atomic(target, lambda tmp: _save_file(_dedupe(tensors), tmp, text))
    write_text_atomic(stem.with_suffix(".json"), text)
    return target


def _save_file(tensors: dict[str, torch.Tensor], path: Path, text: str) -> None:
    """safetensors' writer, whose I/O failures (a full disk) are reported as the OSError they are."""
    try:
        save_file(tensors, str(path), metadata={"convforge": text})
    except SafetensorError as err:
        code = re.search(r"os error (\d+)", str(err))
        if code is None:  # not the file system's: safetensors refused the tensors themselves
            raise ConvforgeError(f"could not write the checkpoint {path}: {err}") from err
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(path)) from err


def _dedupe(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory (tied weights): give each its own copy."""
    seen: set[int] = set()
    out = {}
    for name, t in tensors.items():
        ptr = t.untyped_storage().data_ptr()
        out[name] = t.clone() if ptr in seen and t.numel() else t
        seen.add(ptr)
    return out


def load_checkpoint(path: str | Path, tensors: bool = True) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; a damaged file is a clear error. With ``tensors``
    False only its header (the metadata) is read."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise ConvforgeError(f"checkpoint {path} does not exist")
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "ema": {}, "optim": {}, "rng": {}}
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            for name in f.keys() if tensors else ():
                group, _, key = name.partition(".")
                groups.setdefault(group, {})[key] = f.get_tensor(name)
        meta = json.loads(header["convforge"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:  # a damaged file or header
        raise ConvforgeError(
            f"checkpoint {path} is corrupted or truncated and cannot be loaded ({type(err).__name__}: {err}); "
            "resume from another checkpoint or retrain"
        ) from err
    if not isinstance(meta, dict):
        raise ConvforgeError(f"{path} is not a convforge checkpoint (its metadata is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise ConvforgeError(f"{path} is not a convforge checkpoint (format {meta.get('format')!r})")
    return Checkpoint(groups, meta)
