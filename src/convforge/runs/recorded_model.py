"""What a checkpoint or a run's configuration may make convforge build.

Checkpoints and run directories are files people pass around, so what they record is
read as untrusted:

- the ``model`` is a registered name (convforge, ``timm:`` or ``torchvision:``), or a spec
  file's name whose spec the record itself holds; the file it names is never read;
- each of the ``model_kwargs`` is a number, a string or a list of them, is a parameter of
  the model's builder, and is never one that reads a file or fetches weights
  (``checkpoint_path``, ``pretrained``, ``weights``, ...);
- the network those settings describe is counted on the meta device first, and refused
  above the parameter limit (``CONVFORGE_MAX_PARAMETERS``, 1 billion by default).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from convforge.errors import ConvforgeError, UnknownModelError
from convforge.model_origin import Origin
from convforge.models import get_model_info, rebuild
from convforge.registry import TIMM_PREFIX, TORCHVISION_PREFIX
from convforge.spec import is_spec_path
from convforge.spec.model import OVERRIDES, max_spec_parameters

# a setting whose name holds one of these may read a file or download weights: a record never sets it
FETCHING_WORDS = ("pretrained", "checkpoint", "weights", "path", "file", "url", "cache", "hub", "download")
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
        if any(word in key.lower() for word in FETCHING_WORDS):
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
    origin = Origin(name, dict(kwargs), spec=spec)
    _check_size(origin, source)
    return origin


def _check_size(origin: Origin, source: str) -> None:
    """Count the recorded network's parameters on the meta device, where building spends no memory."""
    limit = max_spec_parameters()
    settings = ", ".join(f"{k}={v!r}" for k, v in origin.model_kwargs.items()) or "its defaults"
    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in rebuild(origin).parameters())
    except ConvforgeError as err:
        raise ConvforgeError(f"{source} records a model that cannot be built: {err}") from err
    except (TypeError, ValueError, OverflowError) as err:
        raise ConvforgeError(f"{source} records {origin.model} with {settings}, which does not build: "
                             f"{' '.join(str(err).split())[:200]}") from err  # fmt: skip
    if count > limit:
        raise ConvforgeError(f"{source} records {origin.model} with {settings}: {count:,} parameters, over the "
                             f"limit of {limit:,} (set CONVFORGE_MAX_PARAMETERS to raise it)")  # fmt: skip
