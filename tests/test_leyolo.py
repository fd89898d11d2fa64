"""LeYOLO: the released layer lists as specs, reproducing the published GFLOPs as the authors counted them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convforge
from convforge.models.leyolo import PUBLISHED_GFLOPS, counting_form, is_conv_unit
from convforge.nn.detect_head import DetectHead
from convforge.nn.inverted_bottleneck import InvertedBottleneck, MobileConv
from convforge.published import PublishedFigure


def published_style_gflops(model: nn.Module, size: int) -> float:
    """GFLOPs as LeYOLO counts them: thop's own hooks (``thop_hooks``), BatchNorm folded in the Conv units only.

    thop sees norms and softmax only through module hooks, so the head's functional
    ``softmax`` (the distribution integral) is not counted, as in the paper.
    """
    return 2 * convforge.profile(counting_form(model), (3, size, size), convention="thop_hooks").macs / 1e9


@pytest.mark.parametrize(
    ("name", "size"), [key for key in PUBLISHED_GFLOPS if key != ("leyolo_nano", 480)], ids=lambda v: str(v)
)
def test_published_gflops_are_reproduced_at_their_printed_precision(name, size):
    published = PUBLISHED_GFLOPS[(name, size)]
    ours = published_style_gflops(convforge.create_model(name), size)
    decimals = len(published.split(".")[1])
    print(f"{name}@{size}: ours {ours:.4f} GFLOPs, published {published}")
    assert f"{ours:.{decimals}f}" == published
    assert PublishedFigure.parse(published).matches(ours)


def test_nano_at_480_gives_1_49_as_the_released_config_does_not_the_printed_1_47():
    ours = published_style_gflops(convforge.create_model("leyolo_nano"), 480)
    assert f"{ours:.2f}" == "1.49"


def test_only_the_conv_units_are_fused_for_counting():
    model = convforge.create_model("leyolo_nano")
    fused = counting_form(model)
    norms = lambda m: sum(isinstance(x, nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    conv_units = sum(is_conv_unit(x) for x in model.modules())
    assert conv_units == 2 + 3 * 2 * 3  # SPPF's two, and three per branch, two branches, three levels
    assert norms(model) - norms(fused) == conv_units
    assert not any(is_conv_unit(x) for x in model.modules() if isinstance(x, MobileConv))
    x = torch.randn(1, 3, 128, 128)
    torch.testing.assert_close(fused(x), model.eval()(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "sources"), [("leyolo_nano", [24, 29, 34]), ("leyolo_small", [24, 29, 34]),
                                               ("leyolo_medium", [27, 32, 37])])  # fmt: skip
def test_the_head_reads_the_released_rows(name, sources):
    model = convforge.create_model(name)
    assert isinstance(model.rows[-1], DetectHead)
    assert [row for row, _ in model.sources[-1]] == sources
    assert len(model.rows) == (36 if name != "leyolo_medium" else 43)


def test_width_scaling_rounds_up_to_eights_after_the_576_cap_and_scales_expansions():
    small = convforge.create_model("leyolo_small")
    assert small.channels[0] == 24  # ceil(16 × 1.33 / 8) × 8
    assert small.channels[14] == 128  # SPPF: 96 × 1.33 = 127.7 → 128
    ib = small.rows[10]
    assert isinstance(ib, InvertedBottleneck) and ib.depthwise.conv.out_channels == 768  # 576 × 1.33 = 766 → 768
    head_input = small.rows[22]
    assert ib.residual is False and head_input.depthwise.conv.in_channels == small.channels[21]  # e = None → c_in


def test_units_follow_the_reference():
    model = convforge.create_model("leyolo_nano")
    assert model.rows[0].conv.bias is not None and model.rows[0].conv.padding == (1, 1)
    assert model.rows[1].conv.padding == (0, 0)  # kernel == stride → no padding
    assert all(m.eps == 1e-3 and m.momentum == 0.03 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert not any(isinstance(m, (nn.Sigmoid, nn.AdaptiveAvgPool2d)) for m in model.modules())  # no SE
    ib = model.rows[4]
    assert ib.residual and not hasattr(ib, "act")
    head = model.rows[-1]
    assert head.box[0][-1].out_channels == 64 and head.cls[0][-1].out_channels == 80
    assert head.box[0][0].conv.out_channels == 64 and head.cls[0][0].conv.out_channels == 80  # c2, c3


def test_training_mode_returns_raw_maps_and_eval_mode_decoded_boxes():
    model = convforge.create_model("leyolo_nano", num_classes=3)
    maps = model.train()(torch.randn(2, 3, 128, 96))
    assert [tuple(m.shape) for m in maps] == [(2, 67, 16, 12), (2, 67, 8, 6), (2, 67, 4, 3)]
    out = model.eval()(torch.randn(2, 3, 128, 96))
    assert out.shape == (2, 4 + 3, 16 * 12 + 8 * 6 + 4 * 3)
    boxes, scores = out[:, :4], out[:, 4:]
    assert (boxes[:, 2:] >= boxes[:, :2]).all() and ((scores > 0) & (scores < 1)).all()


def test_the_class_bias_encodes_a_prior_of_five_objects_per_image():
    head = convforge.create_model("leyolo_nano").rows[-1]
    p = torch.sigmoid(head.cls[0][-1].bias[0])
    assert p.item() == pytest.approx(1 / (1 + (80 * 80**2 / 5 - 1)), rel=1e-4)
    assert (head.box[2][-1].bias == 1).all()


def test_a_pointwise_free_bottleneck_refuses_an_expansion_other_than_its_input():
    with pytest.raises(ValueError, match="expansion must be 32 or None"):
        InvertedBottleneck(32, 32, 3, 64, 1, pointwise=False)


def test_ultralytics_thop_agrees_on_the_counting_form_apart_from_upsampling():
    import thop

    model = counting_form(convforge.create_model("leyolo_small"))
    theirs, _ = thop.profile(model, inputs=(torch.randn(1, 3, 640, 640),), verbose=False)
    result = convforge.profile(model, (3, 640, 640), convention="thop_hooks")
    assert result.by_category.get("softmax", 0) == 0  # thop never sees the head's functional softmax
    upsample = result.by_category["upsample"]  # ultralytics-thop 2.2 counts nearest upsampling as 0, thop 0.1 did not
    assert upsample > 0 and result.macs - upsample == pytest.approx(theirs, abs=1)


def test_the_uib_swapped_nano_keeps_every_width_and_hidden_width_of_leyolo_nano():
    from pathlib import Path

    from timm.models._efficientnet_blocks import UniversalInvertedResidual

    nano = convforge.create_model("leyolo_nano")
    swapped = convforge.create_model(str(Path(__file__).resolve().parents[1] / "specs" / "leyolo_nano_uib.yaml"))
    assert swapped.channels == nano.channels
    for theirs, ours in zip(nano.rows, swapped.rows):
        if isinstance(theirs, InvertedBottleneck):
            assert isinstance(ours, UniversalInvertedResidual)
            hidden = [m.out_channels for m in theirs.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
            assert ours.dw_mid.conv.out_channels == hidden[0]  # the k×k depthwise conv at LeYOLO's hidden width
            assert ours.dw_mid.conv.kernel_size == next(m.kernel_size for m in theirs.modules()
                                                        if isinstance(m, nn.Conv2d) and m.groups > 1)  # fmt: skip
    with torch.no_grad():
        out = swapped.eval()(torch.rand(1, 3, 320, 320))
    assert out.shape == nano.eval()(torch.rand(1, 3, 320, 320)).shape
