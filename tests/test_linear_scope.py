"""LinearScope: the exact affine map a network applies around one input."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import convforge
from convforge.errors import ConvforgeError
from convforge.explain import LinearScope, UnsupportedOperationError


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def with_moved_statistics(model: nn.Module) -> nn.Module:
    """BatchNorm statistics away from (0, 1), as in a trained network, so that their offsets matter."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


class Lambda(nn.Module):
    """A model made of one function."""

    def __init__(self, function) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)


class PlainReluNet(nn.Sequential):
    """Convolutions, BatchNorm, ReLU (also in place), max and average pooling, a linear head."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(32, 5),
        )  # fmt: skip


class EspcnLike(nn.Module):
    """Super-resolution in the ESPCN shape: tanh convolutions, then a sub-pixel (pixel shuffle) output."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.Tanh(), nn.Conv2d(16, 8, 3, padding=1), nn.Tanh())
        self.tail = nn.Conv2d(8, scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.tail(self.body(x))) + F.interpolate(x, scale_factor=2, mode="bilinear")


class FunctionalNet(nn.Module):
    """Activations called as functions inside forward, a squeeze-excitation gate, norms and a concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.squeeze = nn.Linear(8, 4)
        self.excite = nn.Linear(4, 8)
        self.group_norm = nn.GroupNorm(2, 16)
        self.instance_norm = nn.InstanceNorm2d(16, affine=True)
        self.prelu = nn.PReLU(16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.conv(x))
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(h.mean((2, 3))))))
        h = h * gate[:, :, None, None]
        h = torch.cat([F.gelu(h), F.leaky_relu(h, 0.1)], 1)
        h = self.prelu(self.instance_norm(self.group_norm(h)))
        h = F.elu(F.hardswish(h)) + torch.tanh(F.relu6(h))
        h = F.layer_norm(h.mean((2, 3)), (16,))
        return self.head(h)


def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "relu-maxpool": PlainReluNet(),
        "functional": FunctionalNet(),
        "espcn-like": EspcnLike(),
        "simplenet": convforge.create_model("simplenet_cifar_310k", num_classes=10),
        "timm-resnet18": timm.create_model("resnet18", num_classes=10),
        "timm-mobilenetv3": timm.create_model("mobilenetv3_small_100", num_classes=10),
    }


INPUTS = {"espcn-like": (1, 12, 12), "timm-resnet18": (3, 64, 64), "timm-mobilenetv3": (3, 64, 64)}


@pytest.fixture(scope="session")
def trained(shared_data, tmp_path_factory):
    """Networks trained briefly by convforge on real data, each with a real input: {name: (model, x0)}."""
    from convforge.data import load_dataset
    from convforge.data.super_resolution import load_sr_images
    from convforge.runs.loading import load_trained

    project = str(tmp_path_factory.mktemp("runs"))
    common = dict(epochs=2, opt="adamw", lr=3e-3, project=project, progress=False, data_root=str(shared_data))
    resnet = convforge.train("resnet20", data="mnist", train_subset=2000, val_subset=500, batch_size=64, **common)
    assert resnet.last["val_top1"] > 30  # well above chance (10 %)
    mnist = load_dataset("mnist", "test", root=shared_data)
    config = load_trained(resnet.run_dir).config
    digit = (mnist.images[:1].double() / 255 - config["mean"][0]) / config["std"][0]
    espcn = convforge.train("espcn", task="sr", data="set14", val_data="set5", scale=2, patches_per_image=8,
                            batch_size=16, weight_decay=0.0, **common)  # fmt: skip
    assert espcn.last["val_psnr"] > 20
    crop = load_sr_images("set5", 2, root=shared_data).lr[0][None, :, 40:64, 40:64].double()
    return {"trained-resnet20": (resnet.model, digit), "trained-espcn": (espcn.model, crop)}


@pytest.fixture(scope="module", params=[*models(), "trained-resnet20", "trained-espcn"])
def case(request):
    if request.param.startswith("trained-"):
        model, x0 = request.getfixturevalue("trained")[request.param]
        return request.param, model.double().eval(), x0
    model = with_moved_statistics(models()[request.param]).double()
    shape = INPUTS.get(request.param, (3, 32, 32))
    x0 = torch.randn(1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return request.param, model, x0


def test_the_operating_point_reproduces_the_network(case):
    _, model, x0 = case
    with torch.no_grad():
        expected = model(x0)
    for recording in (False, True):  # without autograd the replay takes faster paths; both must agree
        with torch.set_grad_enabled(recording):
            out = LinearScope(model)(x0, x0)
        assert relative_error(out.output, expected) <= 1e-12  # element 0 runs the real network
        assert relative_error(out.affine[0], expected[0]) <= 1e-5  # A(x0)·x0 + c(x0) = F(x0)


def test_the_operating_point_is_reproduced_in_float32_too(case):
    name, model, x0 = case
    model32, x32 = copy.deepcopy(model).float(), x0.float()
    out = LinearScope(model32.eval())(x32, x32)
    assert relative_error(out.affine[0], out.output[0]) <= 1e-4


def test_leaving_out_the_bias_part_gives_the_same_affine_replay(case):
    _, model, x0 = case
    probes = torch.randn(2, *x0.shape[1:], dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    full, short = LinearScope(model)(x0, probes), LinearScope(model)(x0, probes, bias=False)
    assert short.bias is None
    assert relative_error(short.affine, full.affine) <= 1e-12
    assert relative_error(short.output, full.output) <= 1e-12
    with pytest.raises(ConvforgeError, match="bias=False"):
        _ = short.linear


def test_the_output_is_linear_in_the_probe(case):
    _, model, x0 = case
    u, v = torch.randn(2, *x0.shape[1:], dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    out = LinearScope(model)(x0, torch.stack([u, v, 2 * u - 3 * v]))
    combined = 2 * out.linear[0] - 3 * out.linear[1]
    assert relative_error(out.linear[2], combined) <= 1e-10
    zero = LinearScope(model)(x0, torch.zeros_like(x0))
    assert zero.linear.abs().max() <= 1e-10 * zero.bias.abs().max().clamp_min(1)


def test_the_adjoint_identity_holds(case):
    _, model, x0 = case
    scope = LinearScope(model)
    u = torch.randn(x0.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).requires_grad_()
    a_u = scope(x0, u).linear
    v = torch.randn(a_u.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    (a_transposed_v,) = torch.autograd.grad(a_u, u, v)  # Aᵀ·v by one vector-Jacobian product
    left, right = (a_u * v).sum().item(), (u * a_transposed_v).sum().item()
    assert abs(left - right) <= 1e-10 * max(abs(left), 1.0)


def test_a_relu_maxpool_network_map_is_its_jacobian():
    model = with_moved_statistics(PlainReluNet()).double()
    x0 = torch.randn(1, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    jacobian = torch.autograd.functional.jacobian(lambda x: model(x.view_as(x0)).flatten(), x0.flatten())
    impulses = torch.eye(x0.numel(), dtype=torch.float64).view(-1, *x0.shape[1:])
    columns = LinearScope(model)(x0, impulses).linear  # one column of A per impulse
    assert relative_error(columns.T, jacobian) <= 1e-10


def test_a_trained_relu_resnet_map_is_its_jacobian(trained):
    model, x0 = trained["trained-resnet20"]
    model = copy.deepcopy(model).double().eval()
    jacobian = torch.autograd.functional.jacobian(lambda x: model(x.view_as(x0)).flatten(), x0.flatten())
    columns = LinearScope(model).columns(x0, list(range(x0.numel())))
    assert relative_error(columns.T, jacobian) <= 1e-10


def test_gain_linearisations_differ_from_the_gradient():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2)).double().eval()
    x0 = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda x: model(x.view_as(x0)).flatten(), x0.flatten())
    columns = LinearScope(model)(x0, torch.eye(36, dtype=torch.float64).view(-1, 1, 6, 6)).linear
    assert relative_error(columns.T, jacobian) > 1e-3


@pytest.mark.parametrize(
    "forward, name",
    [
        (lambda x: torch.softmax(x, 1), "softmax"),
        (lambda x: x.exp(), "exp"),
        (lambda x: x / (x + 1), "div"),
    ],
)
def test_an_unsupported_operation_is_named(forward, name):
    with pytest.raises(UnsupportedOperationError, match=name):
        LinearScope(Lambda(forward))(torch.randn(1, 3, 4, 4), torch.randn(2, 3, 4, 4))


def test_batchnorm_with_batch_statistics_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(UnsupportedOperationError, match="evaluation mode"):
        LinearScope(model)(torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6))


class TestAnalyses:
    @pytest.fixture(scope="class")
    def setting(self):
        torch.manual_seed(0)
        model = with_moved_statistics(FunctionalNet()).double()
        x0 = torch.randn(1, 3, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
        scope = LinearScope(model, chunk=50)
        matrix = scope.apply(x0, torch.eye(300, dtype=torch.float64).view(-1, 3, 10, 10)).T  # 3 outputs × 300
        return scope, x0, matrix

    def test_columns_and_rows_are_those_of_the_matrix(self, setting):
        scope, x0, matrix = setting
        torch.testing.assert_close(scope.columns(x0, [0, 57, 299]), matrix[:, [0, 57, 299]].T)
        torch.testing.assert_close(scope.rows(x0, [2, 0]).flatten(1), matrix[[2, 0]])

    def test_bias_part_and_vote_map_add_up_to_the_output(self, setting):
        scope, x0, _ = setting
        output = scope(x0).output[0]
        bias = scope.bias_part(x0)[0]
        for k in range(3):
            votes = scope.vote_map(x0, k)
            assert votes.shape == (10, 10)
            assert votes.sum() + bias[k] == pytest.approx(output[k].item(), rel=1e-9, abs=1e-12)

    def test_bias_share_is_the_bias_fraction_of_each_output(self, setting):
        scope, x0, matrix = setting
        share = scope.bias_share(x0)  # one value per output, shaped like one output
        linear = matrix @ x0.flatten()
        bias = scope.bias_part(x0)[0]
        torch.testing.assert_close(share, bias.abs() / (linear.abs() + bias.abs()))
        assert ((share >= 0) & (share <= 1)).all()

    def test_top_singular_values_match_a_full_svd(self):
        model = with_moved_statistics(EspcnLike()).double()
        x0 = torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
        scope = LinearScope(model)
        matrix = scope.apply(x0, torch.eye(64, dtype=torch.float64).view(-1, 1, 8, 8)).flatten(1).T  # 256 × 64
        expected = torch.linalg.svdvals(matrix)[:4]
        u, s, v = scope.top_singular(x0, k=4, oversample=60)  # a sketch as wide as the input: exact
        torch.testing.assert_close(s, expected, rtol=1e-9, atol=0)
        torch.testing.assert_close(scope.apply(x0, v).flatten(1), s[:, None] * u.flatten(1), rtol=1e-6, atol=1e-9)

    def test_x0_must_be_a_batch_of_one(self, setting):
        scope, x0, _ = setting
        with pytest.raises(convforge.ConvforgeError, match="batch of one input"):
            scope(x0[0])


def test_pictures_of_an_image_to_image_network_show_rows_and_columns(tmp_path):
    from convforge.explain.pictures import explain_image

    model = with_moved_statistics(EspcnLike())
    result = explain_image(model, torch.rand(1, 1, 12, 12), tmp_path)
    assert result.kind == "image-to-image"
    assert sorted(p.name for p in result.files) == ["column_centre.png", "column_corner.png", "input.png",
                                                    "row_centre.png", "row_corner.png"]  # fmt: skip
    assert all(p.stat().st_size > 0 for p in result.files)


def test_a_product_of_two_activations_by_matmul_keeps_its_order():
    class Bilinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.left, self.right = nn.Linear(6, 4), nn.Linear(6, 5)

        def forward(self, x):
            h = x.flatten(2).transpose(1, 2)  # N × positions × channels
            return (self.left(h).transpose(1, 2) @ self.right(h)).flatten(1)  # N × (4·5)

    model = Bilinear().double()
    x0 = torch.randn(1, 6, 3, 3, dtype=torch.float64)
    u, v = torch.randn(2, 6, 3, 3, dtype=torch.float64)
    out = LinearScope(model)(x0, torch.stack([x0[0], u, v, u + 2 * v]))
    assert relative_error(out.affine[0], model(x0)[0]) <= 1e-12
    assert relative_error(out.linear[3], out.linear[1] + 2 * out.linear[2]) <= 1e-12


def test_sesr_and_clamping_replay_exactly():
    model = convforge.create_model("sesr_m3", expansion=8).double().eval()
    x0 = 0.2 + 0.6 * torch.rand(1, 1, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    out = LinearScope(model)(x0, x0)
    assert relative_error(out.affine[0], out.output[0]) <= 1e-10
    clamped = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()).double()
    model = Lambda(lambda v: torch.clamp(clamped(v), -0.1, 0.2).clamp_max(0.15).clamp_min(-0.05))
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: model(v.view_as(x)).flatten(), x.flatten())
    columns = LinearScope(model)(x, torch.eye(36, dtype=torch.float64).view(-1, 1, 6, 6)).linear
    assert relative_error(columns.T, jacobian) <= 1e-10
    assert relative_error(LinearScope(model)(x, x).affine[0], model(x)[0]) <= 1e-12


class InPlaceFunctional(nn.Module):
    """Activations applied in place through the functional API, their results ignored."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x * 1.5
        F.relu(h, inplace=True)
        F.leaky_relu(h, 0.2, inplace=True)
        return h.flatten(1)


def test_functional_in_place_activations_change_their_input_as_in_the_network():
    x0 = torch.randn(1, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    probe = torch.randn(1, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    for recording in (False, True):
        with torch.set_grad_enabled(recording):
            out = LinearScope(InPlaceFunctional())(x0, torch.cat([x0, probe]))
        assert relative_error(out.output, InPlaceFunctional()(x0)) <= 1e-12
        assert relative_error(out.affine[0], out.output[0]) <= 1e-12
        expected = (1.5 * probe * (x0 > 0)).flatten(1)[0]  # the piece x0 fell on: ReLU's mask, then slope 1
        assert relative_error(out.linear[1], expected) <= 1e-12


@pytest.mark.parametrize(
    "forward",
    [
        lambda x: torch.clamp(x, 0.5, -0.5),  # min > max: torch makes every value max
        lambda x: torch.clamp(x, min=-0.2),
        lambda x: x.clamp_max(0.1),
    ],
)
def test_clamping_replays_torchs_rule_for_every_bound(forward):
    x0 = torch.randn(1, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    model = Lambda(forward)
    out = LinearScope(model)(x0, x0)
    assert relative_error(out.output, forward(x0)) <= 1e-12 and relative_error(out.affine, forward(x0)) <= 1e-12


def test_clamping_without_bounds_and_hardtanh_with_crossed_bounds_are_refused():
    x0 = torch.randn(1, 8, dtype=torch.float64)
    with pytest.raises((RuntimeError, ValueError)):
        LinearScope(Lambda(lambda x: torch.clamp(x)))(x0, x0)
    with pytest.raises(ValueError, match="min_val"):
        LinearScope(Lambda(lambda x: F.hardtanh(x, 1.0, -1.0)))(x0, x0)


def test_operations_are_known_by_their_function_object_not_their_name():
    def add(x):  # a function that only shares torch's name: squaring is not linear
        if torch.overrides.has_torch_function_unary(x):
            return torch.overrides.handle_torch_function(add, (x,), x)
        return x * x

    class Squares(nn.Module):
        def forward(self, x):
            return add(x).flatten(1)

    with pytest.raises(UnsupportedOperationError, match="cannot replay 'add'"):
        LinearScope(Squares())(torch.randn(1, 1, 2, 2), torch.randn(3, 1, 2, 2))
