"""The table ``convforge models`` prints: each registered model's size and cost at its default input.

Measuring every model takes seconds, and importing torch alone takes more than one, so the
table is measured once per installed convforge, torch and timm and kept in a cache file
(``$XDG_CACHE_HOME/convforge/models-<key>.json``). A later call reads it without importing
torch. The key hashes the versions and the source of the convforge package, so an edited or
upgraded installation measures again; a damaged cache file is measured again too.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import convforge
from convforge.atomic import write_json_atomic
from convforge.input_shapes import shape_text
from convforge.user_cache import cache_folder

COLUMNS = ("family", "task", "input", "params", "macs", "paper_params", "paper_macs")


def _installed_key() -> str:
    """A short hash of convforge's source files and the versions of the libraries that shape the table."""
    digest = hashlib.sha256()
    for package in ("torch", "timm", "torchvision"):
        try:
            digest.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    root = Path(convforge.__file__).parent
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.yaml")]):  # code, and the specs of built-in models
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _read(path: Path) -> dict[str, Any]:
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) and isinstance(table.get("models"), dict) else {}


def _measure(name: str) -> dict[str, Any]:
    from convforge.models import create_model, get_model_info
    from convforge.profiler import profile

    info = get_model_info(name)
    result = profile(create_model(name), info.input_size, name=name)
    return {
        "family": info.family,
        "task": info.task,
        "input": shape_text(info.input_size),
        "params": int(result.params),
        "macs": float(result.macs),
        "paper_params": info.published.get("params"),
        "paper_macs": info.published.get("macs"),
    }


def model_rows(pattern: str = "*", task: str | None = None, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Each registered model matching ``pattern`` (and ``task``) with its family, task, default input, parameters
    and MACs at that input (batch 1), and the figures its paper publishes; from the cache where it holds them."""
    cache = cache_folder() / f"models-{_installed_key()}.json"
    table = _read(cache)
    names: list[str] | None = table.get("names")
    if names is None:
        from convforge.models import list_models

        names = list_models()
    rows: dict[str, dict[str, Any]] = table.get("models", {})
    wanted = [n for n in names if fnmatch.fnmatch(n, pattern)]
    missing = [n for n in wanted if not isinstance(rows.get(n), dict) or set(rows[n]) != set(COLUMNS)]
    if missing:
        from tqdm import tqdm

        from convforge.progress_bars import hidden

        for name in tqdm(missing, desc="measuring", unit="model", leave=False, disable=hidden(progress)):
            rows[name] = _measure(name)
        try:
            write_json_atomic(cache, {"names": names, "models": rows})
        except OSError:  # a read-only home: the table is measured again next time
            pass
    return {n: rows[n] for n in wanted if task is None or rows[n]["task"] == task}


def library_models(pattern: str, libraries: Iterable[str] = ("timm", "torchvision")) -> list[str]:
    """The names (``timm:...``, ``torchvision:...``) of the models those libraries build that match ``pattern``
    (which may carry the library's prefix)."""
    found: list[str] = []
    for library in libraries:
        prefix = f"{library}:"
        if ":" in pattern and not pattern.startswith(prefix):
            continue
        bare = pattern[len(prefix) :] if pattern.startswith(prefix) else pattern
        if library == "timm":
            import timm

            found += [prefix + n for n in timm.list_models(bare)]
        else:
            from torchvision import models

            found += [prefix + n for n in sorted(models.list_models()) if fnmatch.fnmatch(n, bare)]
    return found
