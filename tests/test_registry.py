import pytest
import torch
from torch import nn

import convforge
from convforge.errors import ConvforgeError, UnknownModelError
from convforge.models import default_input_size, get_model_info, register_model


def test_every_registered_model_builds_and_runs_at_its_default_input():
    for name in convforge.list_models():
        info = get_model_info(name)
        model = convforge.create_model(name).eval()
        shapes = info.input_size if isinstance(info.input_size[0], tuple) else (info.input_size,)
        with torch.no_grad():
            out = model(*(torch.randn(2, *shape) for shape in shapes))
        if info.task == "av-event":  # per-segment and per-video logits over 28 events and background
            assert out[0].shape == (2, 10, info.num_classes) and out[1].shape == (2, info.num_classes), name
        elif info.task == "av-parse":  # global, audio and visual video probabilities, then per segment and stream
            assert [tuple(o.shape) for o in out] == [(2, 25), (2, 25), (2, 25), (2, 10, 2, 25)], name
        elif info.task == "sr":
            channels, height, width = info.input_size
            assert out.shape == (2, channels, model.scale * height, model.scale * width), name
        elif info.task == "detect":  # boxes and class scores at every cell of strides 8, 16, 32
            _, height, width = info.input_size
            cells = sum((height // s) * (width // s) for s in (8, 16, 32))
            assert out.shape == (2, 4 + info.num_classes, cells), name
        else:
            assert out.shape == (2, info.num_classes), name


def test_list_models_filters_by_pattern_and_task():
    simplenets = convforge.list_models("simplenet_cifar*")
    assert simplenets == sorted(simplenets)
    assert set(simplenets) == {
        "simplenet_cifar_5m",
        "simplenet_cifar_5m_extra_pool",
        "simplenet_cifar_310k",
        "simplenet_cifar_460k",
    }
    classifiers = convforge.list_models(task="classify")
    upscalers = convforge.list_models(task="sr")
    assert "espcn" in upscalers and "espcn" not in classifiers and "resnet20" in classifiers
    detectors = convforge.list_models(task="detect")
    assert detectors == ["leyolo_large", "leyolo_medium", "leyolo_nano", "leyolo_small"]
    others = [m for task in ("av-event", "av-parse", "sdr") for m in convforge.list_models(task=task)]
    assert "mm_pyramid_ave" in others and "sdr_mlp" in others and "mm_pyramid_ave" not in classifiers
    assert sorted(classifiers + upscalers + detectors + others) == convforge.list_models()
    assert convforge.list_models(task="segmentation") == []


def test_every_registered_task_name_is_a_task_the_engine_trains():
    from convforge.tasks import TASKS

    assert {get_model_info(name).task for name in convforge.list_models()} == set(TASKS)


def test_metadata_records_family_task_paper_input_and_classes():
    info = get_model_info("simplenet_imagenet_5m_m1")
    assert (info.family, info.task, info.input_size, info.num_classes) == (
        "simplenet",
        "classify",
        (3, 224, 224),
        1000,
    )
    assert "simple" in info.paper.lower()


def test_overrides_change_classes_and_input_channels():
    model = convforge.create_model("simplenet_cifar_5m", in_chans=1, num_classes=7).eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 7)
    assert default_input_size("simplenet_cifar_5m", in_chans=1) == (1, 32, 32)


def test_unknown_name_lists_the_closest_registered_names():
    with pytest.raises(UnknownModelError) as caught:
        convforge.create_model("simplenet_cifar5m")
    message = str(caught.value)
    assert "'simplenet_cifar5m'" in message
    assert "simplenet_cifar_5m" in message


def test_unknown_override_is_a_clear_error():
    with pytest.raises(ConvforgeError, match="could not build model .resnet20.*colour"):
        convforge.create_model("resnet20", colour="blue")


def test_timm_prefix_builds_any_timm_model_without_downloading():
    model = convforge.create_model("timm:resnet18", num_classes=5)
    assert isinstance(model, nn.Module)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    assert get_model_info("timm:resnet18").input_size == (3, 224, 224)


def test_unknown_timm_name_suggests_timm_names():
    with pytest.raises(UnknownModelError, match="timm:resnet18"):
        convforge.create_model("timm:resnt18")


def test_torchvision_prefix_builds_torchvision_models():
    model = convforge.create_model("torchvision:mobilenet_v2", num_classes=3)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_register_model_makes_a_user_model_available_by_name():
    @register_model(family="toy", input_size=(1, 8, 8), num_classes=4)
    def toy_linear_classifier(num_classes: int, in_chans: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 64, num_classes))

    assert "toy_linear_classifier" in convforge.list_models("toy_*")
    model = convforge.create_model("toy_linear_classifier")
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 4)


def test_command_line_overrides_read_numbers_booleans_and_lists():
    from convforge.overrides import parse_overrides

    parsed = parse_overrides(["width=0.5", "depth=3", "fused=false", "features=[16, 8]", "empty=[]", "name=x"])
    assert parsed == {"width": 0.5, "depth": 3, "fused": False, "features": [16, 8], "empty": [], "name": "x"}
    assert convforge.create_model("espcn", **parse_overrides(["features=[16,8]"])).body[0].out_channels == 16


def test_the_model_families_are_imported_by_the_package_not_by_the_registry():
    import subprocess
    import sys

    tracer = """
import inspect, sys

class Tracer:
    importers = {}
    def find_spec(self, name, path=None, target=None):
        if name.startswith("convforge.models") and name not in self.importers:
            callers = [f.frame.f_globals.get("__name__", "") for f in inspect.stack()]
            self.importers[name] = next(c for c in callers if c.startswith("convforge"))
        return None

tracer = Tracer()
sys.meta_path.insert(0, tracer)
import convforge.registry
print(sorted(set(tracer.importers.values())))
import convforge
convforge.list_models()
print(sorted(set(tracer.importers.values())))
"""
    run = subprocess.run([sys.executable, "-c", tracer], capture_output=True, text=True, check=True)
    after_registry, after_use = run.stdout.splitlines()
    assert after_registry == "[]"  # the registry alone imports no family
    # the package's first-use loader, then the family modules
    assert after_use == "['convforge.lazy_names', 'convforge.models']"
