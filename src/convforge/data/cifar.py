"""Reader for the CIFAR-10/100 python batches, from a folder or a tar archive (.tar.gz, .tar.xz).

The batches are read directly, without torchvision's md5 check, so that a valid copy
whose files differ byte-wise (re-pickled, re-ordered) is still accepted. Pickles are
loaded with a restricted unpickler that only builds plain containers and numpy arrays.
"""

from __future__ import annotations

import functools
import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from convforge.errors import ConvforgeError

LAYOUTS = {
    "cifar10": {"folder": "cifar-10-batches-py", "train": [f"data_batch_{i}" for i in range(1, 6)],
                "test": ["test_batch"], "labels": "labels", "meta": "batches.meta", "names": "label_names"},
    "cifar100": {"folder": "cifar-100-python", "train": ["train"], "test": ["test"], "labels": "fine_labels",
                 "meta": "meta", "names": "fine_label_names"},
}  # fmt: skip


class _SafeUnpickler(pickle.Unpickler):
    """Only numpy's array reconstruction is allowed; anything else in a batch file is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            found = super().find_class(module, name)
            return _empty_only(found) if name == "_reconstruct" else found
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _empty_only(reconstruct):
    """numpy's ``_reconstruct``, allowed only the empty array numpy's own pickles start from (its data, bounded by
    the file's size, comes after): a crafted shape would otherwise allocate any amount of memory."""

    def checked(subtype, shape, dtype):
        if not isinstance(shape, tuple) or any(not isinstance(n, int) or n != 0 for n in shape):
            raise pickle.UnpicklingError(f"refusing an array of shape {shape!r} built outside its data")
        return reconstruct(subtype, shape, dtype)

    return checked


def _load(raw: bytes, where: str) -> dict:
    try:
        return _SafeUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError) as err:  # fmt: skip
        raise ConvforgeError(f"{where} is not a readable CIFAR batch: {err}") from err


def _members(source: Path, folder: str, names: list[str]) -> dict[str, bytes]:
    """The raw bytes of the named batch files, from a folder or from inside a tar archive."""
    if source.is_dir():
        base = source / folder if (source / folder).is_dir() else source
        missing = [n for n in names if not (base / n).is_file()]
        if missing:
            raise ConvforgeError(f"{base} lacks the CIFAR batch files {', '.join(missing)}")
        return {n: (base / n).read_bytes() for n in names}
    found = _archive_files(source, source.stat().st_mtime)
    missing = [n for n in names if n not in found]
    if missing:
        raise ConvforgeError(f"{source} lacks the CIFAR batch files {', '.join(missing)}")
    return found


@functools.lru_cache(maxsize=1)
def _archive_files(source: Path, mtime: float) -> dict[str, bytes]:
    """Every file of a CIFAR archive by base name, read in one pass (xz archives are slow to reopen)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(source) as archive:
            for member in archive:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name not in found:
                    found[name] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ConvforgeError(f"could not read the archive {source}: {err}") from err
    return found


def read_cifar(source: str | Path, variant: str, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N×3×32×32 uint8), labels (N int64) and class names of one split."""
    layout = LAYOUTS[variant]
    names = layout[split] + [layout["meta"]]
    raw = _members(Path(source), layout["folder"], names)
    images, labels = [], []
    meta = _load(raw[layout["meta"]], f"{source}:{layout['meta']}")
    classes = [str(n) for n in _field(meta, layout["names"], f"{source}:{layout['meta']}")]
    for name in layout[split]:
        where = f"{source}:{name}"
        batch = _load(raw[name], where)
        data = np.asarray(_field(batch, "data", where))
        found = np.asarray(_field(batch, layout["labels"], where))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ConvforgeError(f"{where}: the images must be rows of 3072 bytes (3×32×32), got {data.dtype} "
                                 f"{data.shape}")  # fmt: skip
        if found.shape != (len(data),) or found.dtype.kind not in "iu":
            raise ConvforgeError(f"{where}: expected {len(data)} integer labels, got {found.dtype} {found.shape}")
        if len(found) and not (0 <= found.min() and found.max() < len(classes)):
            raise ConvforgeError(f"{where}: labels must be 0 to {len(classes) - 1}, found {found.min()} to "
                                 f"{found.max()}")  # fmt: skip
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(found.astype(np.int64))
    return np.concatenate(images), np.concatenate(labels), classes


def _field(batch: Any, key: str, where: str) -> Any:
    if not isinstance(batch, dict) or key not in batch:
        raise ConvforgeError(f"{where} is not a CIFAR batch: it has no {key!r} entry")
    return batch[key]
