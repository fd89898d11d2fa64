"""Atomic file writes: write to a temporary file beside the target, flush, then rename over it."""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and rename the result to ``path``; a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:  # the folder refuses new files (read-only, permission, full)
        raise type(err)(err.errno, err.strerror, str(path.parent)) from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, path)
        _fsync_directory(path.parent)
        _remove_leftovers(path)
    except OSError as err:  # named by the file the user knows, not the temporary one
        tmp_path.unlink(missing_ok=True)
        if err.filename is not None and str(err.filename) == str(tmp_path):
            raise type(err)(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


STALE_S = 600  # a temporary file of the same target this old was left by a write that never finished


def _remove_leftovers(path: Path) -> None:
    """Delete the temporary files earlier writes of ``path`` left behind when they were killed."""
    now = time.time()
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_S:
                leftover.unlink()
        except OSError:  # gone already, or not ours to remove
            pass


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Atomically replace ``path`` with ``data`` as indented JSON."""
    return write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n")
