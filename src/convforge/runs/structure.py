"""A model's structure where it differs from its registered build: how a pruned model reloads without pickle.

:func:`structure_of` compares a model with a fresh build of its registered name and
keeps what differs: the shape of every parameter and buffer, and the plain attributes
(ints, floats, strings, lists of them) that modules read in ``forward``, such as a
convolution's ``out_channels`` and ``groups``. :func:`apply_structure` gives a fresh
build that structure, after which the checkpoint's weights load as usual. The record
is JSON; it may only shrink tensors and change attributes a fresh module already has,
so a checkpoint's metadata cannot make the loader build anything larger or new.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from convforge.errors import ConvforgeError

Structure = dict[str, dict[str, Any]]  # {"shapes": {state key: [sizes]}, "attributes": {module: {name: value}}}
_PLAIN = (bool, int, float, str, type(None))
# the attributes pruning changes: channel and feature counts, groups, and a PadShortcut's channel map
WIDTH_ATTRIBUTES = frozenset({"in_channels", "out_channels", "in_features", "out_features", "num_features",
                              "num_channels", "num_groups", "groups", "num_parameters", "normalized_shape",
                              "sources"})  # fmt: skip


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, (list, tuple)) else value


def _attributes(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and _plain(v)}


def structure_of(model: nn.Module, reference: nn.Module) -> Structure:
    """What ``model`` changed against ``reference`` (a fresh build of the same registered name and settings)."""
    ref_state = reference.state_dict()
    shapes = {}
    for key, tensor in model.state_dict().items():
        if key not in ref_state:
            raise ConvforgeError(f"the model has {key!r}, which a fresh build of it lacks; only a model that keeps "
                                 "its registered layers (with fewer channels) can be saved as a structure")  # fmt: skip
        if tuple(tensor.shape) != tuple(ref_state[key].shape):
            shapes[key] = list(tensor.shape)
    ref_modules = dict(reference.named_modules())
    attributes: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        ref_attrs = _attributes(ref_modules[name]) if name in ref_modules else {}
        changed = {k: _jsonable(v) for k, v in _attributes(module).items() if k in ref_attrs and v != ref_attrs[k]}
        beyond = sorted(set(changed) - WIDTH_ATTRIBUTES)
        if beyond:
            raise ConvforgeError(f"{name or 'the model'} changed {', '.join(beyond)}, which a pruned structure does "
                                 "not record; only channel and feature widths can be saved this way")  # fmt: skip
        if changed:
            attributes[name] = changed
    return {"shapes": shapes, "attributes": attributes}


def _check_width(source: str, where: str, attr: str, value: Any, fresh: Any) -> Any:
    """``value`` if it is a width no larger than the fresh build's (``fresh``), else one clear sentence."""
    refused = ConvforgeError(f"{source} sets {where}.{attr} to {value!r}; pruning only narrows a layer, and a "
                             f"fresh build has {fresh!r} there")  # fmt: skip
    if attr == "sources":  # PadShortcut: output j copies input sources[j], or is zero (-1)
        if (
            not isinstance(value, list)
            or len(value) > len(fresh)
            or any(isinstance(v, bool) or not isinstance(v, int) or not -1 <= v < max(len(fresh), 1) for v in value)
        ):
            raise refused
        return value
    if isinstance(fresh, (list, tuple)):  # normalized_shape
        if (
            not isinstance(value, list)
            or len(value) != len(fresh)
            or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= f for v, f in zip(value, fresh))
        ):
            raise refused
        return tuple(value) if isinstance(fresh, tuple) else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= fresh:
        raise refused
    return value


def _check_layer(source: str, name: str, module: nn.Module) -> None:
    """A convolution, linear layer or norm whose widths agree with its tensors, else one clear sentence."""
    problem = None
    if isinstance(module, nn.modules.conv._ConvNd):
        w = module.weight.shape
        out_dim, in_dim = (1, 0) if module.transposed else (0, 1)
        if module.out_channels % module.groups or module.in_channels % module.groups:
            problem = f"{module.groups} groups do not divide {module.in_channels} → {module.out_channels} channels"
        elif module.transposed:
            if w[in_dim] != module.in_channels or w[out_dim] * module.groups != module.out_channels:
                problem = f"its weight {list(w)} does not fit {module.in_channels} → {module.out_channels} channels"
        elif w[out_dim] != module.out_channels or w[in_dim] * module.groups != module.in_channels:
            problem = f"its weight {list(w)} does not fit {module.in_channels} → {module.out_channels} channels"
    elif isinstance(module, nn.Linear) and tuple(module.weight.shape) != (module.out_features, module.in_features):
        problem = f"its weight {list(module.weight.shape)} does not fit {module.in_features} → {module.out_features}"
    elif isinstance(module, nn.modules.batchnorm._NormBase):
        sizes = {t.shape[0] for t in (module.weight, module.running_mean) if t is not None}
        if sizes - {module.num_features}:
            problem = f"its tensors have {sorted(sizes)} channels, not {module.num_features}"
    elif hasattr(module, "sources_fit") and not module.sources_fit():
        problem = f"its channel map {module.sources} reads beyond its {module.in_channels} input channels"
    if problem:
        raise ConvforgeError(f"{source} records an inconsistent pruned layer {name}: {problem}")


def apply_structure(model: nn.Module, structure: Structure, source: str = "the checkpoint") -> nn.Module:
    """Give a fresh build the shapes and attributes of ``structure`` (in place); the weights are then loaded
    with ``load_state_dict``. Only widths change (:data:`WIDTH_ATTRIBUTES`), never beyond the fresh build's,
    tensors only shrink, and every layer must agree with its tensors; anything else is one clear sentence."""
    if (
        not isinstance(structure, dict)
        or not isinstance(structure.get("shapes", {}), dict)
        or not isinstance(structure.get("attributes", {}), dict)
    ):
        raise ConvforgeError(f"{source} records a pruned structure that is not a mapping of shapes and attributes")
    modules = dict(model.named_modules())
    for name, changes in structure.get("attributes", {}).items():
        module = modules.get(name)
        if module is None or not isinstance(changes, dict):
            raise ConvforgeError(f"{source} records attributes for a layer {name!r} that {type(model).__name__} "
                                 "does not have")  # fmt: skip
        current = _attributes(module)
        where = name or "the model"
        for attr, value in changes.items():
            if attr not in WIDTH_ATTRIBUTES or attr not in current:
                raise ConvforgeError(f"{source} sets {where}.{attr}, which pruning never changes (it changes "
                                     f"{', '.join(sorted(WIDTH_ATTRIBUTES))})")  # fmt: skip
            value = _check_width(source, where, attr, value, current[attr])
            try:
                setattr(module, attr, value)
            except (TypeError, ValueError) as err:
                raise ConvforgeError(f"{source} sets {where}.{attr} to {value!r}, which it refuses: {err}") from err
    for key, shape in structure.get("shapes", {}).items():
        owner_name, _, leaf = str(key).rpartition(".")
        owner = modules.get(owner_name)
        old = None
        if owner is not None:
            old = owner._parameters.get(leaf) if leaf in owner._parameters else owner._buffers.get(leaf)
        if old is None:
            raise ConvforgeError(f"{source} records a shape for {key!r}, which {type(model).__name__} does not have")
        if (
            not isinstance(shape, list)
            or len(shape) != old.dim()
            or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= o for s, o in zip(shape, old.shape))
        ):
            raise ConvforgeError(f"{source} records the shape {shape!r} for {key!r}; a pruned tensor keeps its "
                                 f"{old.dim()} dimensions and is at most {list(old.shape)}")  # fmt: skip
        new = torch.zeros(shape, dtype=old.dtype, device=old.device)
        if leaf in owner._parameters:
            owner._parameters[leaf] = nn.Parameter(new, requires_grad=old.requires_grad)
        else:
            owner._buffers[leaf] = new
    for name, module in modules.items():
        _check_layer(source, name or "the model", module)
    return model
