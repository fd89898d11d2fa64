"""What a checkpoint or a run's configuration may make convforge build.

Checkpoints and run directories are files people pass around, so what they record is
read as untrusted:

- the ``model`` is a registered name (convforge, ``timm:`` or ``torchvision:``), or a spec
  file's name whose spec the record itself holds; the file it names is never read;
- each of the ``model_kwargs`` is a number, a string or a list of them, is a parameter of
  the model's builder, and is never one that reads a file or fetches weights
  (``checkpoint_path``, ``pretrained``, ``weights``, ...);
- the network those settings describe is counted on the meta device first, and refused
  above the parameter limit (``CONVFORGE_MAX_PARAMETERS``, 1 billion by default) by the registry.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch

from convforge.errors import ConvforgeError, UnknownModelError
from convforge.field_checks import MAX_INPUT_ELEMENTS
from convforge.input_shapes import is_multi_input, valid_shapes
from convforge.model_origin import Origin
from convforge.models import get_model_info, rebuild
from convforge.registry import TIMM_PREFIX, TORCHVISION_PREFIX
from convforge.spec import is_spec_path
from convforge.spec.model import OVERRIDES, max_spec_parameters
from convforge.task_names import TASK_NAMES

# settings that would read a file or fetch weights: a record never sets them
FETCHING_SETTINGS = frozenset({"checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict",
                               "cache_dir", "model_dir", "hub_dir", "file", "path", "url", "checkpoint",
                               "weights_path", "download"})  # fmt: skip
# settings that fetch pretrained weights when true: the checkpoint holds the weights, so the rebuild fetches none
NO_DOWNLOAD = {"pretrained": False, "weights": None, "weights_backbone": None}
_SCALARS = (bool, int, float, str, type(None))


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) <= 1024 and all(isinstance(v, _SCALARS) for v in value)
    return isinstance(value, _SCALARS)


def _builder_parameters(name: str) -> set[str] | None:
    """The keyword settings a registered convforge model's factory takes; None where any are passed on."""
    if name.startswith((TIMM_PREFIX, TORCHVISION_PREFIX)):
        return None
    factory = get_model_info(name).factory
    if factory is None:
        return None
    parameters = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return set(parameters)


def recorded_origin(record: Mapping[str, Any], source: str) -> Origin:
    """The :class:`Origin` a checkpoint's metadata or a run's configuration (``record``, read from ``source``)
    describes, once every rule of this module holds; else one sentence saying which does not."""
    name, kwargs, spec = record.get("model"), record.get("model_kwargs") or {}, record.get("spec")
    if not isinstance(name, str) or not name:
        raise ConvforgeError(f"{source} records the model {name!r}, which is not a model name")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise ConvforgeError(f"{source} records model settings that are not a mapping of names to values")
    for key, value in kwargs.items():
        if not _plain(value):
            raise ConvforgeError(f"{source} records the model setting {key}={str(value)[:80]}; a recorded setting "
                                 "must be a number, a string or a short list of them")  # fmt: skip
        if key.lower() in FETCHING_SETTINGS:
            raise ConvforgeError(f"{source} records the model setting {key}={value!r}, which would read a file or "
                                 "fetch weights; convforge builds a recorded model only from its name and its "
                                 "shape settings")  # fmt: skip
    if is_spec_path(name):
        if not isinstance(spec, dict):
            raise ConvforgeError(f"{source} names the spec file {name} but does not hold the spec itself; convforge "
                                 "never builds from a file a checkpoint names: build it with "
                                 "convforge.create_model(SPEC) and load the weights yourself")  # fmt: skip
        allowed: set[str] | None = set(OVERRIDES)
    else:
        spec = None
        try:
            allowed = _builder_parameters(name)
        except UnknownModelError as err:
            raise ConvforgeError(f"{source} records an {err}") from err
    unknown = sorted(set(kwargs) - allowed) if allowed is not None else []
    if unknown:
        raise ConvforgeError(f"{source} records the model setting(s) {', '.join(unknown)}, which {name} does not "
                             f"take; it takes {', '.join(sorted(allowed or ())) or 'none'}")  # fmt: skip
    kwargs = {k: NO_DOWNLOAD[k] if k in NO_DOWNLOAD else v for k, v in kwargs.items()}
    origin = Origin(name, kwargs, spec=spec)
    _check_size(origin, source)
    return origin


def _check_size(origin: Origin, source: str) -> None:
    """Build the recorded network on the meta device, where building spends no memory: the registry and the spec
    builder refuse it there above the parameter limit, and a setting the builder rejects is named."""
    settings = ", ".join(f"{k}={v!r}" for k, v in origin.model_kwargs.items()) or "its defaults"
    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in rebuild(origin).parameters())
    except ConvforgeError as err:
        raise ConvforgeError(f"{source} records a model that cannot be built: {err}") from err
    except (TypeError, ValueError, OverflowError) as err:
        raise ConvforgeError(f"{source} records {origin.model} with {settings}, which does not build: "
                             f"{' '.join(str(err).split())[:200]}") from err  # fmt: skip
    limit = max_spec_parameters()
    if count > limit:  # the registry counts only models built with settings; a record's defaults may be huge too
        raise ConvforgeError(f"{source} records {origin.model} with {settings}: {count:,} parameters, over the "
                             f"limit of {limit:,} (set CONVFORGE_MAX_PARAMETERS to raise it)")  # fmt: skip


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(
        not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in value
    )


def check_run_record(record: Mapping[str, Any], source: str) -> None:
    """What inference reads from a checkpoint's record besides the model: the task, the input size, the
    normalisation and the class names. Each must have the shape training writes, else one sentence naming it."""
    recipe = record.get("recipe")
    task = recipe.get("task") if isinstance(recipe, dict) else None
    if task not in TASK_NAMES:
        raise ConvforgeError(f"{source} records the task {task!r}; convforge's tasks are {', '.join(TASK_NAMES)}")
    size = record.get("input_size")
    if size is not None and (
        not isinstance(size, list) or not valid_shapes(size)
    ):  # fmt: skip
        raise ConvforgeError(f"{source} records the input size {str(size)[:80]}; a run records a shape such as "
                             "[channels, height, width] of positive integers (or one per input stream), at most "
                             f"{MAX_INPUT_ELEMENTS:,} values")  # fmt: skip
    mean, std = record.get("mean"), record.get("std")
    if mean is not None or std is not None:
        channels = size[0] if size and not is_multi_input(size) else None
        if not (_numbers(mean) and _numbers(std) and len(mean) == len(std) and mean
                and (channels is None or len(mean) == channels) and all(s > 0 for s in std)):  # fmt: skip
            raise ConvforgeError(f"{source} records the normalisation mean {str(mean)[:60]}, std {str(std)[:60]}; "
                                 "a run records one finite mean and one positive std per input channel")  # fmt: skip
    classes = record.get("classes")
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        raise ConvforgeError(f"{source} records the class names {str(classes)[:80]}; a run records a list of "
                             "names")  # fmt: skip
    scale = recipe.get("scale", 2) if task == "sr" else 2
    if not _int(scale) or not 2 <= scale <= 16:
        raise ConvforgeError(f"{source} records the super-resolution scale {scale!r}; use an integer from 2 to 16")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
