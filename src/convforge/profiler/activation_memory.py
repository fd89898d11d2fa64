"""Peak activation memory of a forward pass, from the lifetimes of the tensors it creates.

Every tensor an operation returns is tracked by the storage it lives in; the
storage's bytes count as live from the first tensor that uses it until the last
such tensor is freed. Parameters, buffers and the inputs are excluded, so the peak
is the memory the forward pass itself needs on top of the model and its input.
Scratch space that a kernel allocates and frees internally is not seen.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten


class ActivationMemoryTracker:
    """Track live bytes of tensors created during a forward pass; ``peak_bytes`` is the maximum."""

    def __init__(self, external: Iterable[torch.Tensor] = ()) -> None:
        self._external = {self._key(t) for t in external if self._key(t) is not None}
        self._live: dict[tuple, list[int]] = {}  # storage key -> [bytes, tensors alive]
        self._seen: set[int] = set()  # ids of tensors already tracked
        self.current_bytes = 0
        self.peak_bytes = 0

    @staticmethod
    def _key(t: torch.Tensor) -> tuple | None:
        if t.device.type == "meta" or t.is_sparse:
            return None
        storage = t.untyped_storage()
        if storage.nbytes() == 0:
            return None
        return (t.device.type, t.device.index, storage.data_ptr())

    def on_outputs(self, tensors: Iterable[torch.Tensor], op_args: Any = ()) -> None:
        """Account for the tensors one operation (called with ``op_args``) returned."""
        for t in tensors:
            key = self._key(t)
            if key is None or key in self._external or id(t) in self._seen:
                continue
            entry = self._live.get(key)
            if entry is None and key in self._input_keys(op_args):
                # a view of a tensor that existed before (a plain attribute, a constant):
                # it allocates nothing, and neither will later views of it
                self._external.add(key)
                continue
            if entry is None:
                entry = self._live[key] = [t.untyped_storage().nbytes(), 0]
                self.current_bytes += entry[0]
                self.peak_bytes = max(self.peak_bytes, self.current_bytes)
            entry[1] += 1
            self._seen.add(id(t))
            weakref.finalize(t, self._release, key, id(t))

    def _input_keys(self, op_args: Any) -> set:
        leaves, _ = tree_flatten(op_args)
        return {self._key(a) for a in leaves if isinstance(a, torch.Tensor)}

    def _release(self, key: tuple, tensor_id: int) -> None:
        self._seen.discard(tensor_id)
        entry = self._live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current_bytes -= entry[0]
            del self._live[key]
