"""Where convforge writes files a user asked for (exports, predictions, enlarged images).

- never onto a folder or a checkpoint, even when asked to overwrite;
- never over an existing file unless the user passes ``--overwrite`` (``overwrite=True``);
- where the user named no folder, into a fresh one (``predict``, ``predict-2``, ...), so that
  nothing written before is replaced.

The files themselves are written atomically (:mod:`convforge.atomic`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from convforge.errors import ConvforgeError

CHECKPOINT_FOLDER = "checkpoints"
RUN_RECORDS = ("config.yaml", "metrics.csv", "profile.json", "structure.json", ".lock")  # a run's own files
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_checkpoint_place(path: Path) -> bool:
    """Whether ``path`` is a checkpoint, or a file where a run keeps its checkpoints."""
    return (
        path.suffix == ".safetensors"
        or path.parent.name == CHECKPOINT_FOLDER
        or (path.suffix == ".json" and path.with_suffix(".safetensors").exists())
    )  # a checkpoint's sidecar


def check_output_file(target: Path, overwrite: bool, replaceable: Callable[[Path], bool] | None = None) -> None:
    """Refuse ``target`` if it is a folder or a checkpoint, or an existing file unless ``overwrite`` (or
    ``replaceable(target)`` says convforge itself wrote it)."""
    if target.is_dir():
        raise ConvforgeError(f"{target} is a folder; name the file to write")
    if is_checkpoint_place(target):
        raise ConvforgeError(f"{target} is where checkpoints live; write to another file")
    if target.name in RUN_RECORDS and (target.parent / "config.yaml").is_file():
        raise ConvforgeError(f"{target} is part of the run in {target.parent}; write to another file")
    if (target.exists() or target.is_symlink()) and not target.is_file():
        raise ConvforgeError(f"{target} is not a regular file (a device, a pipe or a broken link); name a file to "
                             "write")  # fmt: skip
    if target.exists() and not overwrite and not (replaceable is not None and replaceable(target)):
        raise ConvforgeError(f"{target} exists; pass --overwrite to replace it, or name another file")


def check_output_files(folder: Path, names: Iterable[str], overwrite: bool) -> None:
    """Refuse to write ``names`` into ``folder`` if it is a file or a checkpoint folder, or if any of them exists
    there and ``overwrite`` is not given; nothing is written before every name is cleared."""
    if folder.exists() and not folder.is_dir():
        raise ConvforgeError(f"{folder} is a file; --out names the folder to write into")
    if folder.name == CHECKPOINT_FOLDER:
        raise ConvforgeError(f"{folder} is where checkpoints live; write into another folder")
    for name in names:
        check_output_file(folder / name, overwrite)


def check_picture_path(target: Path, option: str) -> None:
    """A PNG file a user named for a picture (``--plot``): its folder must exist (a typo must not create folders
    elsewhere), its name must end in .png, and only an earlier PNG there is replaced."""
    if target.suffix.lower() != ".png":
        raise ConvforgeError(f"{option} {target}: name a .png file")
    if not target.parent.is_dir():
        raise ConvforgeError(f"{option} {target}: the folder {target.parent} does not exist; create it first or name "
                             "a file in an existing folder")  # fmt: skip
    check_output_file(target, overwrite=True)
    if target.exists() and not _is_png(target):
        raise ConvforgeError(f"{option} {target}: the file exists and is not a PNG picture; name another file")


def _is_png(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if nothing was written into it (a prediction that failed before its first file)."""
    try:
        folder.rmdir()
    except OSError:  # not empty, or already gone
        pass


def fresh_folder(base: Path) -> Path:
    """A new, empty folder: ``base``, or ``base-2``, ``base-3``, ... when it is taken. Each is made with one
    ``mkdir``, so two processes never get the same one."""
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")
