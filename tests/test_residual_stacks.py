"""Residual stacks in three layouts, the residual_stack_net family, and layout surgery."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

import convforge
from convforge.errors import InvalidValueError
from convforge.nn import ParallelResidualStack, ResidualBranch, SequentialResidualStack, TaylorResidualStack


def linear_stack(channels: int, depth: int, seed: int = 0) -> SequentialResidualStack:
    """A stack of linear branches (bias-free convolutions, no norm, identity activation), in float64."""
    torch.manual_seed(seed)
    stack = SequentialResidualStack(channels, depth, kernel=3, act="identity", norm="none", bias=False).double()
    for branch in stack.branches:  # keep the higher-order terms of comparable size
        nn.init.normal_(branch.conv.weight, std=0.3 / (3 * channels**0.5))
    return stack


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def trained_like_stack(layout_cls, **kwargs) -> nn.Module:
    """A BatchNorm stack whose running statistics and affine parameters are not the initial ones."""
    torch.manual_seed(1)
    stack = layout_cls(6, 3, **kwargs)
    for branch in stack.branches:
        branch.norm.running_mean.uniform_(-0.5, 0.5)
        branch.norm.running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(branch.norm.weight, 0.5, 1.5)
        nn.init.uniform_(branch.norm.bias, -0.2, 0.2)
    return stack


class TestLayouts:
    @pytest.mark.parametrize("layout", ["sequential", "parallel", "taylor2", "taylor7"])
    def test_every_layout_has_the_same_parameters_under_the_same_names(self, layout):
        reference = convforge.create_model("residual_stack_net_cifar", layout="sequential")
        model = convforge.create_model("residual_stack_net_cifar", layout=layout)
        shapes = {k: v.shape for k, v in reference.state_dict().items()}
        assert {k: v.shape for k, v in model.state_dict().items()} == shapes
        count = sum(p.numel() for p in model.parameters())
        assert count == sum(p.numel() for p in reference.parameters())
        assert model.layout == layout

    @pytest.mark.parametrize("depth", [1, 3, 5])
    def test_linear_branches_at_full_order_equal_the_sequential_stack(self, depth):
        sequential = linear_stack(8, depth)
        full = TaylorResidualStack.from_branches(sequential.branches, order=depth)
        x = torch.randn(2, 8, 10, 10, dtype=torch.float64)
        assert relative_error(full(x), sequential(x)) < 1e-5

    def test_an_order_above_the_depth_is_the_full_expansion(self):
        sequential = linear_stack(4, 3)
        x = torch.randn(1, 4, 7, 7, dtype=torch.float64)
        beyond = TaylorResidualStack.from_branches(sequential.branches, order=9)
        assert relative_error(beyond(x), sequential(x)) < 1e-12

    @pytest.mark.parametrize("order", [1, 2, 3])
    def test_order_n_keeps_exactly_the_products_of_up_to_n_branches(self, order):
        stack = linear_stack(5, 4, seed=3)
        x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
        expected = x.clone()
        for m in range(1, order + 1):
            for chosen in itertools.combinations(stack.branches, m):  # in stack order: F_k ⋯ F_j, j < k
                term = x
                for branch in chosen:
                    term = branch(term)
                expected = expected + term
        got = TaylorResidualStack.from_branches(stack.branches, order=order)(x)
        assert relative_error(got, expected) < 1e-12
        if order < 4:  # truncation really drops the higher-order terms
            assert relative_error(got, stack(x)) > 1e-6

    @pytest.mark.parametrize("mode", ["train", "eval"])
    @pytest.mark.parametrize("act", ["relu", "gelu", "tanh"])
    def test_first_order_equals_the_parallel_stack(self, mode, act):
        parallel = trained_like_stack(ParallelResidualStack, act=act, fused=False).train(mode == "train")
        first = TaylorResidualStack.from_branches(copy.deepcopy(parallel.branches), order=1).train(mode == "train")
        x = torch.randn(4, 6, 9, 9)
        torch.testing.assert_close(first(x), parallel(x), rtol=1e-5, atol=1e-6)

    def test_sequential_and_parallel_differ_for_non_linear_branches(self):
        sequential = trained_like_stack(SequentialResidualStack).eval()
        parallel = ParallelResidualStack.from_branches(sequential.branches).eval()
        x = torch.randn(2, 6, 8, 8)
        assert relative_error(parallel(x), sequential(x)) > 1e-3


class TestFusedParallelPath:
    @pytest.mark.parametrize(
        "settings",
        [
            dict(act="relu"),
            dict(act="gelu", branch_scale=0.5),
            dict(act="tanh", norm="none"),  # biased convolutions
            dict(act="identity", kernel=5),
        ],
        ids=["relu-bn", "gelu-bn-scaled", "tanh-bias", "linear-k5"],
    )
    def test_fused_equals_unfused_in_outputs_gradients_and_statistics(self, settings):
        torch.manual_seed(0)
        fused = ParallelResidualStack(8, 4, fused=True, **settings)
        unfused = copy.deepcopy(fused)
        unfused.fused = False
        assert fused.fusable
        x = torch.randn(6, 8, 11, 11)
        for _ in range(3):  # several training steps move the BatchNorm running statistics
            xf, xu = x.clone().requires_grad_(), x.clone().requires_grad_()
            yf, yu = fused(xf), unfused(xu)
            torch.testing.assert_close(yf, yu, rtol=1e-5, atol=1e-5)
            (yf.square().mean()).backward()
            (yu.square().mean()).backward()
            torch.testing.assert_close(xf.grad, xu.grad, rtol=1e-4, atol=1e-6)
        for (name, a), (_, b) in zip(fused.named_parameters(), unfused.named_parameters()):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
        for (name, a), (_, b) in zip(fused.named_buffers(), unfused.named_buffers()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        fused.eval(), unfused.eval()
        torch.testing.assert_close(fused(x), unfused(x), rtol=1e-5, atol=1e-5)

    def test_a_frozen_batchnorm_stays_frozen_on_the_fused_path(self):
        fused = trained_like_stack(ParallelResidualStack).train()
        for branch in fused.branches:  # the usual "freeze BN" idiom inside a training model
            branch.norm.eval()
        unfused = copy.deepcopy(fused)
        unfused.fused = False
        statistics = [b.clone() for b in fused.buffers()]
        x = torch.randn(4, 6, 8, 8)
        torch.testing.assert_close(fused(x), unfused(x), rtol=1e-5, atol=1e-6)
        for before, after in zip(statistics, fused.buffers()):
            assert torch.equal(before, after)

    def test_fused_path_accepts_channels_last_inputs(self):
        stack = trained_like_stack(ParallelResidualStack).eval()
        x = torch.randn(2, 6, 8, 8)
        expected = stack._unfused(x)
        torch.testing.assert_close(stack(x.to(memory_format=torch.channels_last)), expected, rtol=1e-5, atol=1e-6)

    def test_momentum_none_statistics_match_the_branches_own(self):
        fused = ParallelResidualStack(4, 3)
        for branch in fused.branches:
            branch.norm.momentum = None
        unfused = copy.deepcopy(fused)
        unfused.fused = False
        for _ in range(3):
            x = torch.randn(4, 4, 6, 6)
            fused(x), unfused(x)
        for a, b in zip(fused.buffers(), unfused.buffers()):
            torch.testing.assert_close(a, b)

    def test_branches_that_cannot_fuse_run_one_by_one(self):
        stack = ParallelResidualStack(4, 3, act=nn.PReLU)  # PReLU has a learned slope per branch
        assert not stack.fusable
        x = torch.randn(2, 4, 6, 6)
        torch.testing.assert_close(stack(x), stack._unfused(x))
        stack.fused = True
        with pytest.raises(InvalidValueError, match="PReLU"):
            stack(x)

    def test_whether_to_fuse_is_decided_once_and_again_after_a_mode_change(self, monkeypatch):
        import convforge.nn.residual_stack as module

        looks = []
        real = module._fusion_blocker
        monkeypatch.setattr(module, "_fusion_blocker", lambda branches: looks.append(1) or real(branches))
        stack = ParallelResidualStack(4, 3)
        x = torch.randn(2, 4, 6, 6)
        for _ in range(3):
            stack(x)
        assert len(looks) == 1
        stack.eval()
        stack(x)
        stack(x)
        assert len(looks) == 2
        stack.branches[0].act = nn.PReLU()  # a branch changed in place: the stack is told
        stack.reset_fusion()
        assert not stack.fusable and len(looks) == 3

    def test_a_copy_made_before_the_first_call_still_fuses_and_the_model_pickles(self):
        import io

        stack = ParallelResidualStack(8, 3, fused=True)
        copied = copy.deepcopy(stack)
        assert copied.fusable and copied(torch.randn(1, 8, 4, 4)).shape == (1, 8, 4, 4)
        buffer = io.BytesIO()
        torch.save(convforge.create_model("residual_stack_net", layout="parallel"), buffer)
        assert buffer.tell() > 0


class TestModelFamily:
    def test_registered_variants_build_at_their_input_size(self):
        for name, size in [("residual_stack_net_mnist", (1, 1, 28, 28)), ("residual_stack_net_cifar", (2, 3, 32, 32))]:
            model = convforge.create_model(name).eval()
            assert model(torch.randn(size)).shape == (size[0], 10)
            assert convforge.get_model_info(name).family == "residual_stack_net"

    def test_parameter_count_follows_from_width_and_depth(self):
        model = convforge.create_model("residual_stack_net", in_chans=1, width=16, depth=3, kernel=5)
        stem = 1 * 16 * 9 + 2 * 16
        branch = 16 * 16 * 25 + 2 * 16
        assert sum(p.numel() for p in model.parameters()) == stem + 3 * branch + 16 * 4 * 10 + 10  # 2×2 cells

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            (dict(layout="diagonal"), "layout = 'diagonal'"),
            (dict(layout="taylor0"), "taylor<n>"),
            (dict(kernel=4), "kernel = 4"),
            (dict(depth=0), "depth = 0"),
            (dict(act="swish2"), "activation 'swish2'"),
            (dict(norm="layer"), "norm = 'layer'"),
        ],
    )
    def test_bad_settings_are_named_with_what_is_allowed(self, kwargs, message):
        with pytest.raises(convforge.ConvforgeError, match=message):
            convforge.create_model("residual_stack_net", **kwargs)


class TestSurgery:
    def model(self) -> nn.Module:
        torch.manual_seed(2)
        model = convforge.create_model("residual_stack_net", width=6, depth=3)
        model.train()
        model(torch.randn(8, 1, 28, 28))  # move the BatchNorm statistics off their initial values
        return model.eval()

    def test_to_parallel_leaves_every_other_layer_unchanged(self):
        model = self.model()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        parallel = convforge.to_parallel(model)
        assert isinstance(parallel.stack, ParallelResidualStack)
        assert isinstance(model.stack, SequentialResidualStack)  # the original is untouched
        for name, tensor in parallel.state_dict().items():
            assert torch.equal(tensor, before[name]), name
        for name, module in parallel.named_modules():
            if name and not name.startswith("stack"):
                original = model.get_submodule(name)
                assert type(module) is type(original) and repr(module) == repr(original), name
        x = torch.randn(3, 1, 28, 28)
        h = model.stem(x)
        expected = model.classifier(model.pool(h + sum(b(h) for b in model.stack.branches)).flatten(1))
        torch.testing.assert_close(parallel(x), expected, rtol=1e-5, atol=1e-6)

    def test_shared_weights_are_the_same_tensors_and_copies_are_not(self):
        model = self.model()
        shared = convforge.to_parallel(model)
        copied = convforge.to_parallel(model, share_weights=False)
        for (name, p), s, c in zip(model.named_parameters(), shared.parameters(), copied.parameters()):
            assert s is p, name
            assert c is not p and torch.equal(c, p), name
        with torch.no_grad():
            shared.stack.branches[0].conv.weight.add_(1.0)
        assert torch.equal(model.stack.branches[0].conv.weight, shared.stack.branches[0].conv.weight)
        assert not torch.equal(model.stack.branches[0].conv.weight, copied.stack.branches[0].conv.weight)

    def test_round_trip_returns_the_original_function(self):
        model = self.model()
        back = convforge.to_sequential(convforge.to_parallel(model))
        x = torch.randn(2, 1, 28, 28)
        torch.testing.assert_close(back(x), model(x))
        assert back.training == model.training

    def test_taylor_truncation_interpolates_between_the_layouts(self):
        model = self.model()
        x = torch.randn(2, 1, 28, 28)
        torch.testing.assert_close(convforge.taylor_truncate(model, 1)(x), convforge.to_parallel(model)(x))
        assert convforge.taylor_truncate(model, 2).layout == "taylor2"
        with pytest.raises(InvalidValueError, match="order = 0"):
            convforge.taylor_truncate(model, 0)

    def test_a_bare_stack_converts_too(self):
        stack = linear_stack(4, 3)
        parallel = convforge.to_parallel(stack)
        assert isinstance(parallel, ParallelResidualStack) and parallel.branches[0] is not stack.branches[0]
        assert parallel.branches[0].conv.weight is stack.branches[0].conv.weight

    @pytest.mark.parametrize("convert", [convforge.to_parallel, convforge.to_sequential])
    def test_models_without_a_residual_stack_are_refused_by_name(self, convert):
        with pytest.raises(InvalidValueError, match="CifarResNet has no residual stack"):
            convert(convforge.create_model("resnet20"))

    def test_branch_modules_are_reusable_outside_a_stack(self):
        branch = ResidualBranch(4, kernel=1, act="relu", norm="none")
        assert branch.conv.bias is not None and branch(torch.randn(1, 4, 3, 3)).shape == (1, 4, 3, 3)
