"""Reading a YAML file (or taking an already-loaded mapping) as a dict, with one clear error when it cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convforge.errors import ConvforgeError

MAX_YAML_BYTES = 8 * 2**20  # a spec, recipe or dataset YAML larger than this is refused unread


def load_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``, read safely: no code, no aliases (``*name``, whose nesting can expand a few
    hundred bytes into gigabytes), at most ``MAX_YAML_BYTES``. Raises ``OSError`` or ``yaml.YAMLError``."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, f"YAML aliases (*{event.anchor}) are not accepted",
                                                  event.start_mark)  # fmt: skip
            return super().compose_node(parent, index)

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise yaml.YAMLError(f"the file is {size / 2**20:.1f} MiB, more than the {MAX_YAML_BYTES // 2**20} MiB a "
                             "convforge YAML may be")  # fmt: skip
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise yaml.YAMLError(f"the file is not UTF-8 text (byte {err.start} cannot be decoded)") from err
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as err:
        raise yaml.YAMLError("the file nests lists or mappings too deeply to be a convforge YAML") from err


def yaml_error_sentence(err: BaseException) -> str:
    """A YAML or file error as one line: the problem and where it is (line, column)."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(err).split())


def read_mapping(source: str | Path | dict[str, Any], what: str,
                 error: type[ConvforgeError] = ConvforgeError) -> dict[str, Any]:  # fmt: skip
    """A copy of ``source`` if it is a dict, else the YAML file it names loaded; ``error`` names ``what`` it was."""
    if isinstance(source, dict):
        return dict(source)
    import yaml

    try:
        values = load_yaml(source) or {}
    except (OSError, yaml.YAMLError) as err:
        raise error(f"could not read the {what} {source}: {yaml_error_sentence(err)}") from err
    if not isinstance(values, dict):
        raise error(f"the {what} {source} must be a mapping of field: value")
    return values
