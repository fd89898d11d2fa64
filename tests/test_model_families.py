import pytest
import torch
from torch import nn

import convforge
from convforge.errors import ConvforgeError
from convforge.models import CifarResNet, SimpleNet
from convforge.models.cifar_resnet import PadShortcut
from convforge.nn import PlainConvStack, parse_layers


def test_layer_notation_parses_convs_kernels_and_pools():
    specs = parse_layers("64, 2048k1 p")
    assert [(s.kind, s.channels, s.kernel) for s in specs] == [("conv", 64, 3), ("conv", 2048, 1), ("pool", 0, 3)]
    with pytest.raises(ConvforgeError, match="'64x'"):
        parse_layers("32 64x")


def test_simplenet_unit_is_conv_with_bias_then_bn_with_momentum_005_then_relu():
    model = convforge.create_model("simplenet_cifar_310k")
    unit = model.features[0]
    assert unit.conv.bias is not None and unit.conv.kernel_size == (3, 3)
    assert unit.bn.momentum == 0.05 and unit.bn.eps == 1e-5
    assert isinstance(unit.act, nn.ReLU)
    assert isinstance(model.global_pool, nn.AdaptiveMaxPool2d)


def test_simplenet_stride_modes_put_stride_2_on_the_stated_convs():
    def strided(model):
        return [i for i, m in enumerate(model.features) if hasattr(m, "conv") and m.conv.stride == (2, 2)]

    assert strided(convforge.create_model("simplenet_imagenet_5m_m1")) == [0, 1, 2]
    assert strided(convforge.create_model("simplenet_imagenet_5m_m2")) == [0, 1, 3]
    with pytest.raises(ValueError, match="stride_mode"):
        SimpleNet(stride_mode=3)


def test_simplenet_extra_pool_variant_has_one_more_pool_and_the_same_parameters():
    base = convforge.create_model("simplenet_cifar_5m")
    extra = convforge.create_model("simplenet_cifar_5m_extra_pool")
    pools = lambda m: sum(isinstance(x, nn.MaxPool2d) for x in m.modules())  # noqa: E731
    assert pools(extra) == pools(base) + 1
    assert sum(p.numel() for p in extra.parameters()) == sum(p.numel() for p in base.parameters())


def test_simplenet_on_mnist_takes_one_channel_28x28():
    model = convforge.create_model("simplenet_cifar_5m", in_chans=1).eval()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_small_imagenet_simplenets_scale_widths():
    half = convforge.create_model("simplenet_imagenet_small_050_m1")
    assert half.features[0].conv.out_channels == 32
    assert half.classifier.in_features == 128


def test_cifar_resnet_depth_and_option_a_shortcuts_have_no_parameters():
    model = CifarResNet(20)
    blocks = [m for m in model.modules() if m.__class__.__name__ == "BasicBlock"]
    assert len(blocks) == 9
    shortcuts = [b.shortcut for b in blocks if isinstance(b.shortcut, PadShortcut)]
    assert len(shortcuts) == 2
    assert all(sum(p.numel() for p in s.parameters()) == 0 for s in shortcuts)
    out = shortcuts[0](torch.randn(1, 16, 32, 32))
    assert out.shape == (1, 32, 16, 16)


def test_cifar_resnet_option_b_uses_projections_and_more_parameters():
    a = sum(p.numel() for p in CifarResNet(20, shortcut="A").parameters())
    b = sum(p.numel() for p in CifarResNet(20, shortcut="B").parameters())
    assert b > a
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(21)


def test_cifar_vgg16_has_thirteen_convs_and_a_single_linear_head():
    model = convforge.create_model("vgg16_cifar")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 13 and len(linears) == 1 and linears[0].in_features == 512


def test_plain_stack_rejects_strides_on_pools():
    with pytest.raises(ConvforgeError, match="not conv units"):
        PlainConvStack("32 p 64", strides={1: 2})


def test_a_fresh_resnet20_starts_near_the_loss_of_a_uniform_guess():
    """A new classifier's first loss is about ln(classes): its initial logits are small, as timm's and
    torchvision's are, so the first steps are not spent shrinking them."""
    import math

    from convforge.data import load_dataset

    data = load_dataset("fashion-mnist", "train").subset(128)
    x = (data.images.float().div(255) - data.mean[0]) / data.std[0]
    model = convforge.create_model("resnet20", num_classes=10, in_chans=1).train()
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(x), data.labels)
    assert abs(float(loss) - math.log(10)) < 0.5, float(loss)
