"""Warnings on the command line: one line each, ``convforge: warning: ...``, and each message once."""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

_shown: set[str] = set()


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
          line: str | None = None) -> None:  # fmt: skip
    text = " ".join(str(message).split())
    if text in _shown:
        return
    _shown.add(text)
    print(f"convforge: warning: {text}", file=file or sys.stderr)


def show_warnings_as_lines() -> None:
    """Print every warning as one line without its source line, once per message (the command line calls this)."""
    warnings.showwarning = _show
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the libraries' notices to their developers
    warnings.filterwarnings("ignore", category=FutureWarning)
