"""Reader for the IDX format of MNIST and Fashion-MNIST (``*-idx3-ubyte[.gz]``)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from convforge.errors import ConvforgeError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzipped or not, into a numpy array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ConvforgeError(f"could not read IDX file {path}: {err}") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ConvforgeError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = _DTYPES[data[2]], data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    count = int(np.prod(shape)) if shape else 1
    itemsize = np.dtype(dtype).itemsize
    if len(data) - offset < count * itemsize:
        raise ConvforgeError(f"{path} is truncated: expected {count * itemsize} bytes of data after the header")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
