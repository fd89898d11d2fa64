"""convforge.fuse_bn: BatchNorm folded into the convolutions that feed it, with the same function in eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convforge
from convforge.errors import ConvforgeError
from convforge.surgery import fold_batch_norm


def with_trained_looking_norms(model: nn.Module) -> nn.Module:
    """BatchNorm statistics and affine parameters away from their initial values, so that folding matters."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


def norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize("name", ["resnet20", "simplenet_cifar_310k", "residual_stack_net_cifar", "vgg11_cifar"])
def test_fused_models_compute_the_same_function_without_batchnorm(name):
    model = with_trained_looking_norms(convforge.create_model(name))
    fused = convforge.fuse_bn(model)
    assert norms(model) > 0 and norms(fused) == 0
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        reference, output = model(x), fused(x)
    assert (output - reference).abs().max() <= 1e-5 * reference.abs().max()
    assert convforge.profile(fused, (3, 32, 32)).params < convforge.profile(model, (3, 32, 32)).params
    assert norms(model) > 0  # the original is left as it was


def test_a_conv_whose_output_is_also_read_elsewhere_keeps_its_batchnorm():
    class Branching(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)

        def forward(self, x):
            h = self.conv(x)
            return self.bn(h) + h  # folding would change the second use

    model = with_trained_looking_norms(Branching())
    fused = convforge.fuse_bn(model)
    assert norms(fused) == 1
    x = torch.randn(1, 2, 5, 5)
    assert torch.allclose(model(x), fused(x))


def test_an_untraceable_model_is_fused_inside_its_sequentials():
    class Dynamic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
                return self.body(x)
            return self.body(-x)

    model = with_trained_looking_norms(Dynamic())
    fused = convforge.fuse_bn(model)
    assert norms(fused) == 0
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), fused(x), atol=1e-6)


def test_folding_needs_running_statistics_and_matching_channels():
    with pytest.raises(ConvforgeError, match="running statistics"):
        fold_batch_norm(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2, track_running_stats=False))
    with pytest.raises(ConvforgeError, match="channels"):
        fold_batch_norm(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(3))


def test_timm_batchnorm_with_activation_is_left_alone():
    import timm

    model = with_trained_looking_norms(timm.create_model("mobilenetv3_small_100", num_classes=10))
    fused = convforge.fuse_bn(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), fused(x), atol=1e-5)
