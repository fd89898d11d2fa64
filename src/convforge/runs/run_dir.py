"""Run directories: ``<project>/<task>/<name>`` with config, metrics, checkpoints, plots and profile.

Every file is written atomically. ``metrics.csv`` is rewritten whole each epoch from
the rows so far, so it is never half a line long.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from convforge.atomic import write_text_atomic
from convforge.errors import ConvforgeError
from convforge.mapping_file import load_yaml, yaml_error_sentence
from convforge.output_files import fresh_folder


class RunDir:
    """The files of one training run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def path_for(project: str | Path, task: str, name: str) -> Path:
        """Where the run ``name`` of ``task`` lives under ``project`` (before any ``-2`` suffix)."""
        return Path(project) / task / name

    @classmethod
    def create(cls, project: str | Path, task: str, name: str) -> RunDir:
        """A new run directory; ``name-2``, ``name-3``, ... when the name is taken."""
        return cls(fresh_folder(cls.path_for(project, task, name)))

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (for resume and evaluation)."""
        run = cls(path)
        if not (run.path / "config.yaml").is_file():
            raise ConvforgeError(f"{run.path} is not a convforge run directory (it has no config.yaml)")
        return run

    # ------------------------------------------------------------ paths

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    def checkpoint(self, which: str = "last") -> Path:
        return self.checkpoints / f"{which}.safetensors"

    # ------------------------------------------------------------ files

    def write_config(self, config: dict[str, Any]) -> None:
        write_text_atomic(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        """The run's config.yaml; a damaged one is a clear error."""
        try:
            config = load_yaml(self.path / "config.yaml")
        except (OSError, yaml.YAMLError) as err:
            raise ConvforgeError(f"{self.path / 'config.yaml'} cannot be read: {yaml_error_sentence(err)}") from err
        if not isinstance(config, dict) or not isinstance(config.get("recipe"), dict):
            raise ConvforgeError(f"{self.path / 'config.yaml'} is not a convforge run config (it has no recipe)")
        return config

    def write_json(self, name: str, data: Any) -> None:
        write_text_atomic(self.path / name, json.dumps(data, indent=2, default=str))

    def read_json(self, name: str) -> Any:
        """A JSON file of the run; a missing or damaged one is a clear error."""
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError) as err:
            raise ConvforgeError(f"{self.path / name} cannot be read: {err}") from err

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.csv`` with one row per epoch."""
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path / "metrics.csv", buffer.getvalue())

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.csv"
        if not path.is_file():
            return []
        with open(path, newline="") as f:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
