"""Parameter counts and MACs next to the figures the papers publish."""

import pytest
import torchvision

import convforge
from convforge.models import get_model_info
from convforge.published import PublishedFigure

PUBLISHED = [
    (name, key, text)
    for name in convforge.list_models()
    for key, text in sorted(get_model_info(name).published.items())
]


def _measure(name):
    info = get_model_info(name)
    result = convforge.profile(convforge.create_model(name), info.input_size)
    return {"params": result.params, "macs": result.macs}


@pytest.mark.parametrize(("name", "key", "published"), PUBLISHED, ids=[f"{n}-{k}" for n, k, _ in PUBLISHED])
def test_registered_model_matches_its_published_figure(name, key, published):
    measured = _measure(name)[key]
    figure = PublishedFigure.parse(published)
    assert figure.matches(measured), f"{name} {key}: measured {measured:,}, published {published}"


def test_exact_parameter_counts_of_simplenet():
    assert _measure("simplenet_cifar_5m")["params"] == 5_498_378
    assert _measure("simplenet_cifar_310k")["params"] == 312_362
    assert _measure("simplenet_imagenet_5m_m1")["params"] == 5_752_808
    assert _measure("simplenet_imagenet_9m_m2")["params"] == 9_508_968


def test_simplenet_macs_within_one_percent():
    assert _measure("simplenet_cifar_5m")["macs"] == pytest.approx(652e6, rel=0.01)
    assert _measure("simplenet_imagenet_5m_m1")["macs"] == pytest.approx(1.34e9, rel=0.01)
    assert _measure("simplenet_imagenet_5m_m2")["macs"] == pytest.approx(1.69e9, rel=0.01)


def test_cifar_resnets_have_option_a_parameter_counts():
    assert _measure("resnet20")["params"] == pytest.approx(0.27e6, abs=0.005e6)
    assert _measure("resnet56")["params"] == pytest.approx(0.85e6, abs=0.005e6)


@pytest.mark.parametrize(("builder", "published"), [("resnet50", 4.09e9), ("mobilenet_v2", 0.30e9)])
def test_torchvision_reference_macs_at_224(builder, published):
    model = getattr(torchvision.models, builder)()
    assert convforge.profile(model, (3, 224, 224)).macs == pytest.approx(published, rel=0.01)


def test_published_figure_tolerance_follows_printed_precision():
    assert PublishedFigure.parse("5,498,378").tolerance == 0
    assert PublishedFigure.parse("0.27M").matches(269_722)
    assert not PublishedFigure.parse("0.27M").matches(280_000)
    assert PublishedFigure.parse("3.56G").matches(3.5546e9)  # 1 % floor for rounded figures
    with pytest.raises(ValueError, match="not a number"):
        PublishedFigure.parse("about five million")
