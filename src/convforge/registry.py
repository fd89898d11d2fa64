"""Named models: register a factory once, build it anywhere by name.

Three kinds of name are understood by :func:`create_model`:

- a convforge name, registered with :func:`register_model` (``simplenet_cifar_5m``);
- ``timm:<name>``, handed to ``timm.create_model`` (``timm:resnet18``);
- ``torchvision:<name>``, handed to ``torchvision.models.get_model`` (``torchvision:resnet50``).

Pretrained weights are never fetched unless the caller asks for them. The built-in
families register themselves when :mod:`convforge.models` is imported, which re-exports
the queries below; look models up through it (or ``convforge.create_model``).
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from convforge.errors import ConvforgeError, InvalidValueError, UnknownModelError
from convforge.input_shapes import is_multi_input
from convforge.model_origin import Origin, set_origin
from convforge.spec import Spec, build_spec, is_spec_path
from convforge.spec.model import max_spec_parameters
from convforge.task_names import current_task_name

TIMM_PREFIX = "timm:"
TORCHVISION_PREFIX = "torchvision:"


@dataclass(frozen=True)
class ModelInfo:
    """What convforge knows about a named model before building it."""

    name: str
    family: str
    task: str
    paper: str
    input_size: tuple[int, ...]
    num_classes: int
    published: dict[str, str] = field(default_factory=dict, compare=False)  # e.g. {"params": "5,498,378"}
    factory: Callable[..., nn.Module] | None = field(default=None, repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    task: str = "classify",  # a name of convforge.tasks.TASKS
    paper: str = "",
    input_size: tuple[int, ...] = (3, 224, 224),
    num_classes: int = 1000,
    published: dict[str, str] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model factory under its function name.

    ``published`` holds the paper's figures at the default input, as printed:
    ``{"params": "5,498,378", "macs": "652M"}`` (see :mod:`convforge.published`).

    The factory must accept ``in_chans``, and ``num_classes`` if it classifies;
    :func:`create_model` passes the registered defaults (``input_size[0]`` and
    ``num_classes``, where the factory takes it) unless the caller overrides them.
    """

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = factory.__name__
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ConvforgeError(f"a model named {name!r} is already registered by {_REGISTRY[name].family!r}")
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            task=current_task_name(task),
            paper=paper,
            input_size=tuple(input_size),
            num_classes=num_classes,
            published=dict(published or {}),
            factory=factory,
        )
        return factory

    return decorator


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered convforge model names matching a shell-style ``pattern``, sorted.

    ``task`` keeps only models of that task (``"classify"``, ``"detect"``, ``"sr"``). timm and
    torchvision models are not listed; use ``timm.list_models`` for those.
    """
    task = current_task_name(task) if task is not None else None
    return sorted(
        name
        for name, info in _REGISTRY.items()
        if fnmatch.fnmatchcase(name, pattern) and (task is None or info.task == task)
    )


def _closest(name: str, candidates: list[str], n: int = 5) -> list[str]:
    """The candidates most similar to ``name``, best first."""
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not close:  # fall back to names sharing a prefix, which difflib can rank too low
        stem = name.split("_")[0]
        close = [c for c in candidates if c.startswith(stem)][:n]
    return close


def _unknown(name: str, candidates: list[str], prefix: str = "", hint: str = "") -> UnknownModelError:
    close = _closest(name, candidates)
    suggestion = (
        f" Closest names: {', '.join(prefix + c for c in close)}." if close else " No registered name is close."
    )
    return UnknownModelError(f"unknown model {prefix + name!r}.{suggestion}{hint}")


def get_model_info(name: str) -> ModelInfo:
    """Metadata of a model name, without building it for convforge names.

    For ``timm:`` names the default input size and class count come from timm's
    pretrained config; for ``torchvision:`` names they are 3x224x224 and 1000.
    """
    if name.startswith(TIMM_PREFIX):
        import timm

        timm_name = name[len(TIMM_PREFIX) :]
        if not timm.is_model(timm_name):
            raise _unknown(timm_name, timm.list_models(), TIMM_PREFIX)
        cfg = timm.get_pretrained_cfg(timm_name)
        input_size = tuple(getattr(cfg, "input_size", None) or (3, 224, 224))
        num_classes = getattr(cfg, "num_classes", None) or 1000
        return ModelInfo(name, "timm", "classify", "", input_size, num_classes)
    if is_spec_path(name):
        return _spec_info(name, Spec.load(name))
    if name.startswith(TORCHVISION_PREFIX):
        from torchvision import models as tv_models

        tv_name = name[len(TORCHVISION_PREFIX) :]
        available = tv_models.list_models()
        if tv_name not in available:
            raise _unknown(tv_name, available, TORCHVISION_PREFIX)
        return ModelInfo(name, "torchvision", "classify", "", (3, 224, 224), 1000)
    if name not in _REGISTRY:
        raise _unknown(
            name,
            list(_REGISTRY),
            hint=" Run `convforge models` to list them all, or use timm:<name> for a timm model.",
        )
    return _REGISTRY[name]


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a model by name, with its registered defaults replaced by ``overrides``.

    Common overrides are ``num_classes`` and ``in_chans`` (1 for MNIST). For
    ``timm:`` and ``torchvision:`` names, overrides go to the library's own builder,
    and weights stay random unless ``pretrained=True`` (timm) or ``weights=...``
    (torchvision) is passed.
    """
    given = dict(overrides)
    if is_spec_path(name):
        spec = Spec.load(name)  # the file is read once, and the network keeps what it read
        return set_origin(build_spec(spec, **overrides), Origin(name, given, spec=spec.to_dict()))
    if overrides:  # settings can make a registered model of any size: count it before building it for real
        _check_size(name, dict(overrides))
    return set_origin(_create(name, overrides), Origin(name, given))


def _check_size(name: str, overrides: dict[str, Any]) -> None:
    """Refuse ``name`` with ``overrides`` above the parameter limit, counted on the meta device."""
    import torch

    if torch.empty(0).device.type == "meta":  # the caller is counting this build itself, at no cost
        return
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            count = sum(p.numel() for p in _create(name, dict(overrides)).parameters())
    except (ConvforgeError, TypeError, ValueError, RuntimeError, NotImplementedError):
        return  # the real build below says what is wrong
    limit = max_spec_parameters()
    if count > limit:
        shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise ConvforgeError(f"{name} with {shown} would hold {count:,} parameters, over the limit of {limit:,} (set "
                             "CONVFORGE_MAX_PARAMETERS to raise it)")  # fmt: skip


def _spec_info(name: str, spec: Spec) -> ModelInfo:
    size = tuple(spec.input_size) or (spec.in_channels, 224, 224)
    return ModelInfo(name, "spec", spec.task, "", size, spec.num_classes)


def origin_info(origin: Origin) -> ModelInfo:
    """What :func:`get_model_info` says of ``origin``'s model; a spec it holds is read from the record."""
    return get_model_info(origin.model) if origin.spec is None else _spec_info(origin.model, Spec.load(origin.spec))


def rebuild(origin: Origin) -> nn.Module:
    """A fresh build of what ``origin`` records, without its pruned structure; a spec it holds is built from
    the record, never from the file it names."""
    if origin.spec is None:
        return create_model(origin.model, **origin.model_kwargs)
    model = build_spec(origin.spec, **origin.model_kwargs)
    return set_origin(model, Origin(origin.model, dict(origin.model_kwargs), spec=origin.spec))


def _create(name: str, overrides: dict[str, Any]) -> nn.Module:
    info = get_model_info(name)
    if name.startswith(TIMM_PREFIX):
        import timm

        overrides.setdefault("pretrained", False)
        return _build(name, timm.create_model, name[len(TIMM_PREFIX) :], **overrides)
    if name.startswith(TORCHVISION_PREFIX):
        from torchvision import models as tv_models

        tv_name = name[len(TORCHVISION_PREFIX) :]
        builder = tv_models.get_model_builder(tv_name)
        if "weights_backbone" in inspect.signature(builder).parameters:
            overrides.setdefault("weights_backbone", None)  # segmentation/detection default to a download
        return _build(name, builder, **overrides)
    assert info.factory is not None
    parameters = inspect.signature(info.factory).parameters
    defaults: dict[str, Any] = {}
    if not is_multi_input(info.input_size):  # a model of several input streams has no one channel count
        defaults["in_chans"] = info.input_size[0]
    if "num_classes" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        defaults["num_classes"] = info.num_classes
    kwargs = {**defaults, **overrides}
    return _build(name, info.factory, **kwargs)


def _build(name: str, builder: Callable[..., nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """Call a model builder, turning a rejected override into one clear sentence."""
    try:
        return builder(*args, **kwargs)
    except (TypeError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in ("pretrained", "weights_backbone"))
        raise ConvforgeError(f"could not build model {name!r} with {shown or 'its defaults'}: {reason}") from err


def default_input_size(name: str, **overrides: Any) -> tuple[int, ...]:
    """The per-sample input shape (C, H, W) a model expects by default, honouring an ``in_chans`` override."""
    size = get_model_info(name).input_size
    if "in_chans" in overrides and not is_multi_input(size):
        channels = overrides["in_chans"]
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise InvalidValueError(f"in_chans must be a positive integer, got {channels!r}")
        size = (channels, *size[1:])
    return size
