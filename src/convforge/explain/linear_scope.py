"""LinearScope: replay a network as the affine map it applies around one input.

The model runs on one batch ``[x0, probe_1, …, probe_P]`` (and a final zero probe when
the bias part is asked for). Linear operations (convolutions, linear layers, pooling by
averaging, additions, concatenation, pixel shuffle, upsampling, BatchNorm in evaluation
mode, reshapes) treat every element alike.
At every non-linear operation, element 0 goes through the real function and every
other element gets the affine action that the function took on element 0:

- piecewise-linear units (ReLU, ReLU6, LeakyReLU, PReLU, hard-tanh, hard-sigmoid,
  clamping, max pooling) use the linear piece element 0 fell on (the gain ``1[z0 > 0]``,
  the winning positions);
- gates (SiLU = x·σ(x), GELU = x·Φ(x), Hardswish = x·hardsigmoid(x), and any product
  of two activations such as a squeeze-excitation ``x * gate``) keep the gate computed
  from element 0;
- other point-wise functions g (sigmoid, tanh, ELU, softplus) use the
  secant through ``(0, g(0))`` and ``(z0, g(z0))``: ``g(0) + z·(g(z0) − g(0))/z0``;
- normalisations that use the statistics of their input (LayerNorm, GroupNorm,
  InstanceNorm) use those of element 0.

So element 0 of the output is F(x0); element p is A(x0)·x_p + c(x0), exactly affine in
the probe; and a zero probe gives c(x0), the part that biases and
normalisation offsets contribute along the recorded path. Feeding x_p = x0 gives F(x0)
back. Operations are intercepted at the level of torch functions, so functional calls
inside ``forward`` (``F.relu``, ``torch.sigmoid``, ``x * gate``) are handled as well as
modules; any operation that is neither known linear nor linearised raises
:class:`UnsupportedOperationError` naming it, rather than giving a wrong answer.

The replay itself is :mod:`convforge.explain.replay`, with one rule per operation in
:mod:`convforge.explain.affine_rules`; this module holds the analyses built on it
(columns, rows, vote maps, bias shares, singular vectors).

The batch dimension must stay first through the network (as it does in CNNs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convforge.errors import ConvforgeError
from convforge.explain.affine_rules import UnsupportedOperationError
from convforge.explain.replay import replay

__all__ = ["LinearScope", "ScopeOutput", "UnsupportedOperationError", "bias_share_of"]


@dataclass
class ScopeOutput:
    """One LinearScope call: F(x0), A(x0)·x_p + c(x0) for each probe, and c(x0) when asked for."""

    output: torch.Tensor  # F(x0), batch of 1
    affine: torch.Tensor  # A(x0)·x_p + c(x0), one row per probe
    bias: torch.Tensor | None  # c(x0), batch of 1; None for a call with bias=False

    @property
    def linear(self) -> torch.Tensor:
        """A(x0)·x_p, one row per probe (needs the bias part)."""
        if self.bias is None:
            raise ConvforgeError("this LinearScope call left out c(x0) (bias=False), so A·x cannot be separated")
        return self.affine - self.bias


def bias_share_of(linear: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """|c| / (|A·x| + |c|) elementwise: the share of each output's magnitude that comes from the bias part."""
    bias = bias.abs()
    return bias / (linear.abs() + bias).clamp_min(torch.finfo(bias.dtype).tiny)


class LinearScope:
    """The linear interpreter of ``model`` (put in evaluation mode).

    ``scope(x0, probes)`` returns F(x0), A(x0)·probe + c(x0) for each probe and c(x0)
    from one forward pass of a batch of ``2 + len(probes)``; with ``bias=False`` the
    zero probe that yields c(x0) is left out (a batch of ``1 + len(probes)``). ``x0`` is
    a batch of one input (1×C×H×W); ``probes`` a batch of inputs of the same shape.
    Autograd records the pass as it would the forward (run it under ``torch.no_grad()``
    when no gradient is wanted: that is also the faster path). The analyses below build
    on that call; all indices into inputs and outputs are flat (row-major) positions
    within one example.
    """

    def __init__(self, model: nn.Module, chunk: int = 64) -> None:
        self.model = model.eval()
        self.chunk = chunk  # probes per forward pass in the analyses

    def __call__(self, x0: torch.Tensor, probes: torch.Tensor | None = None, bias: bool = True) -> ScopeOutput:
        if x0.dim() < 2 or x0.shape[0] != 1:
            raise ConvforgeError(f"x0 must be a batch of one input (1×C×H×W), got shape {tuple(x0.shape)}")
        probes = probes if probes is not None else x0.new_zeros((0, *x0.shape[1:]))
        if probes.shape[1:] != x0.shape[1:]:
            raise ConvforgeError(f"probes of shape {tuple(probes.shape[1:])} do not match x0 {tuple(x0.shape[1:])}")
        parts = [x0, probes.to(x0.dtype)] + ([torch.zeros_like(x0)] if bias else [])
        out = self.replay(torch.cat(parts))
        if not bias:
            return ScopeOutput(out[:1], out[1:], None)
        return ScopeOutput(out[:1], out[1:-1], out[-1:])

    def replay(self, batch: torch.Tensor) -> torch.Tensor:
        """The network on ``[x0, …]`` with every element after the first replayed through x0's affine map."""
        out = replay(self.model, batch)
        if not isinstance(out, torch.Tensor):
            raise ConvforgeError(f"LinearScope needs a model that returns one tensor, got {type(out).__name__}")
        return out

    # ------------------------------------------------------------ analyses

    def bias_part(self, x0: torch.Tensor) -> torch.Tensor:
        """c(x0): what biases and normalisation offsets contribute to the output, batch of one."""
        with torch.no_grad():
            return self(x0).bias

    def apply(self, x0: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """A(x0)·v for a batch of input-shaped ``vectors`` (in chunks)."""
        with torch.no_grad():
            return torch.cat([self(x0, part).linear for part in vectors.split(self.chunk)])

    def apply_transposed(self, x0: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """A(x0)ᵀ·v for a batch of output-shaped ``vectors``, by vector–Jacobian products (in chunks)."""
        results = []
        for part in vectors.split(self.chunk):
            probes = torch.zeros((len(part), *x0.shape[1:]), dtype=x0.dtype, device=x0.device, requires_grad=True)
            with torch.enable_grad():
                affine = self(x0.detach(), probes, bias=False).affine  # c does not depend on the probes
                (grad,) = torch.autograd.grad(affine, probes, part.to(affine.dtype))
            results.append(grad)
        return torch.cat(results)

    def columns(self, x0: torch.Tensor, indices: list[int] | torch.Tensor) -> torch.Tensor:
        """Columns of A(x0): the responses to unit impulses at the given input positions."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        impulses = torch.zeros((len(indices), x0[0].numel()), dtype=x0.dtype, device=x0.device)
        impulses[torch.arange(len(indices)), indices] = 1
        return self.apply(x0, impulses.view(-1, *x0.shape[1:]))

    def rows(self, x0: torch.Tensor, outputs: list[int] | torch.Tensor) -> torch.Tensor:
        """Rows of A(x0), input-shaped: Aᵀ·e_j for the given output positions."""
        outputs = torch.as_tensor(outputs, dtype=torch.long)
        with torch.no_grad():
            shape = self(x0, bias=False).output.shape[1:]
        selectors = torch.zeros((len(outputs), shape.numel()), dtype=x0.dtype, device=x0.device)
        selectors[torch.arange(len(outputs)), outputs] = 1
        return self.apply_transposed(x0, selectors.view(-1, *shape))

    def vote_map(self, x0: torch.Tensor, k: int) -> torch.Tensor:
        """Per-pixel votes for output ``k``: (row_k ⊙ x0) summed over channels, H×W.

        The votes add up to output k minus its bias part: Σ votes + c_k(x0) = F_k(x0).
        """
        return (self.rows(x0, [k])[0] * x0[0]).sum(0)

    def bias_share(self, x0: torch.Tensor) -> torch.Tensor:
        """For every output, |c| / (|A·x0| + |c|): the share of its magnitude that comes from the bias part."""
        with torch.no_grad():
            out = self(x0, x0)
        return bias_share_of(out.linear[0], out.bias[0])

    def top_singular(
        self, x0: torch.Tensor, k: int = 6, oversample: int = 8, power_iterations: int = 2, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``k`` largest singular triplets of A(x0) by randomised SVD (Halko et al.).

        Only products with A and Aᵀ are used. Returns (U: k output-shaped left vectors,
        S: k singular values, V: k input-shaped right vectors), with A·v_i = s_i·u_i.
        """
        with torch.no_grad():
            out_shape = self(x0, bias=False).output.shape[1:]
        generator = torch.Generator(device=x0.device).manual_seed(seed)
        width = min(k + oversample, x0[0].numel(), out_shape.numel())
        omega = torch.randn((width, *x0.shape[1:]), dtype=x0.dtype, device=x0.device, generator=generator)
        y = self.apply(x0, omega).flatten(1)  # width × outputs: the rows are A·ω
        for _ in range(power_iterations):
            q = torch.linalg.qr(y.T).Q.T
            z = self.apply_transposed(x0, q.view(-1, *out_shape)).flatten(1)
            y = self.apply(x0, torch.linalg.qr(z.T).Q.T.reshape(-1, *x0.shape[1:])).flatten(1)
        q = torch.linalg.qr(y.T).Q  # outputs × width, orthonormal basis of A's range
        b = self.apply_transposed(x0, q.T.reshape(-1, *out_shape)).flatten(1)  # width × inputs: rows of Qᵀ A
        u_small, s, vh = torch.linalg.svd(b, full_matrices=False)
        u = q @ u_small
        return u.T[:k].reshape(-1, *out_shape), s[:k], vh[:k].reshape(-1, *x0.shape[1:])
