"""``convforge.reparameterize``: one call folds RepVGG and MobileOne branches, SESR's collapsible blocks and
BatchNorm, keeping the function to 1e-5 with random non-zero BatchNorm statistics, and the profiler sees the
reduced cost."""

import pytest
import torch
from torch import nn

import convforge
from convforge.spec import build_spec


def _random_batch_norm(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            shape = module.running_mean.shape
            module.running_mean.copy_(torch.randn(shape, generator=g) * 0.5)
            module.running_var.copy_(torch.rand(shape, generator=g) + 0.5)
            module.weight.data.copy_(torch.randn(shape, generator=g))
            module.bias.data.copy_(torch.randn(shape, generator=g))
    return model.eval()


@pytest.mark.parametrize(("block", "args"), [("RepVGG", [32, 3, 1]), ("MobileOne", [32, 3, 1, 3])])
def test_reparameterised_branches_equal_the_trained_form(block, args):
    layers = [[-1, 1, "Conv", [32, 3, 1]], [-1, 2, block, args], [-1, 1, "Classify", [10]]]
    model = _random_batch_norm(build_spec({"in_channels": 3, "layers": layers}))
    x = torch.randn(4, 3, 32, 32)
    folded = convforge.reparameterize(model)
    with torch.no_grad():
        before, after = model(x), folded(x)
    assert torch.allclose(after, before, rtol=1e-5, atol=1e-5 * before.abs().max().item())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    dense, lean = convforge.profile(model, (3, 32, 32)), convforge.profile(folded, (3, 32, 32))
    assert lean.macs < dense.macs and lean.params < dense.params
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is left as it was


def test_sesr_collapses_in_the_same_call():
    model = _random_batch_norm(convforge.create_model("sesr_m5"))
    x = torch.rand(1, 1, 24, 24)
    folded = convforge.reparameterize(model)
    with torch.no_grad():
        before, after = model(x), folded(x)
    assert torch.allclose(after, before, rtol=1e-5, atol=1e-5)
    assert convforge.profile(folded, (1, 24, 24)).macs < convforge.profile(model, (1, 24, 24)).macs
