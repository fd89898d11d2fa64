"""Where a dataset's files are looked for, in order.

1. the folder the user names (``--data-root`` / ``root=``);
2. ``$CONVFORGE_DATA``;
3. known system locations (the Debian package ``dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist``);
4. convforge's download cache (``$XDG_CACHE_HOME/convforge/data``), filled by a
   torchvision download when the machine is online.
"""

from __future__ import annotations

import os
from pathlib import Path

from convforge.user_cache import cache_folder

SYSTEM_LOCATIONS = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}


def download_cache() -> Path:
    """The folder torchvision downloads go to."""
    return cache_folder() / "data"


def candidate_roots(name: str, root: str | Path | None = None) -> list[Path]:
    """The folders to search for dataset ``name``, most specific first."""
    roots: list[Path] = []
    if root is not None:
        roots.append(Path(root).expanduser())
    if os.environ.get("CONVFORGE_DATA"):
        roots.append(Path(os.environ["CONVFORGE_DATA"]).expanduser())
    roots += SYSTEM_LOCATIONS.get(name, [])
    roots.append(download_cache())
    return roots


def expand(root: Path, name: str, subfolders: list[str]) -> list[Path]:
    """A root and the conventional subfolders a dataset may sit in below it."""
    names = [name, name.replace("-", ""), name.replace("-", "_")]
    out = [root]
    for n in dict.fromkeys(names):
        out.append(root / n)
    for sub in subfolders:
        out.append(root / sub)
        for n in dict.fromkeys(names):
            out.append(root / n / sub)
    return out


def find_folder(name: str, root: str | Path | None, markers: tuple[str, ...], what: str) -> Path:
    """The folder of dataset ``name``: ``name`` itself when it is a folder, else the first folder below the
    usual roots (see :func:`candidate_roots`) holding one of ``markers``; one sentence when there is none."""
    from convforge.errors import ConvforgeError

    given = Path(name).expanduser()
    if given.is_dir():
        return given
    searched = []
    for base in candidate_roots(name, root):
        for folder in expand(base, name, []):
            searched.append(folder)
            if any((folder / marker).is_file() for marker in markers):
                return folder
    places = ", ".join(dict.fromkeys(str(f) for f in searched[:4]))
    raise ConvforgeError(f"no {what} folder named {name!r} was found (looked in {places}, ...): name the folder "
                         f"holding {' or '.join(markers)}, or set --data-root / CONVFORGE_DATA")  # fmt: skip
