"""One process at a time in a run directory: an advisory lock on ``<run>/.lock``, held while it trains.

The operating system releases the lock when the process ends, however it ends (a kill
included), so a stale lock never blocks a resume. The file records who holds it, for the
sentence a second process gets.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from convforge.errors import ConvforgeError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not protected there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLock:
    """The lock of one run directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise one sentence naming the process that holds it."""
        if fcntl is None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = self.holder()
            who = (f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"
                   if holder else "another process")  # fmt: skip
            raise ConvforgeError(f"{self.path.parent} is in use by {who}; wait for it to finish or stop it, "
                                 "then resume") from None  # fmt: skip
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(record).encode())
        self._fd = fd
        return self

    def holder(self) -> dict[str, Any]:
        """Who holds (or last held) the lock, as it recorded itself; empty if unknown."""
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def release(self) -> None:
        """Let go of the lock (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
