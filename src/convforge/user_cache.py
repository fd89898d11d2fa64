"""Where convforge keeps what it can fetch or measure again: ``$XDG_CACHE_HOME/convforge`` (``~/.cache/convforge``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> Path:
    """convforge's cache folder: downloads (``data/``) and the measured model table."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "convforge"
