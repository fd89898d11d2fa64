"""Band-masked attention: convforge's cached mask and fused attention against a mask rebuilt in a Python loop.

MM-Pyramid's release builds its band mask at every call with a Python loop over the time steps
(and on CUDA only), then fills the scores and applies softmax by hand. The baseline here does the
same on the CPU: a fresh mask from a loop each call, explicit scores, ``masked_fill`` and softmax.
convforge's :class:`~convforge.nn.band_attention.BandMaskedAttention` takes its mask from a cache
and calls ``scaled_dot_product_attention``. Both run the same projections and feed-forward layers
with the same weights, forward and backward, in one process; the outputs are checked equal.

    .venv/bin/python benchmarks/temporal_speed.py --batch 16 --width 512 --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from convforge.nn.band_attention import BandMaskedAttention


def loop_mask_attention(block: BandMaskedAttention, x: torch.Tensor) -> torch.Tensor:
    """The same layer with the mask built step by step on every call and the attention written out."""
    batch, steps, channels = x.shape
    q = block._split(block.query(block.norm_query(x)))
    k, v = block._split(block.key(x)), block._split(block.value(x))
    scores = q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5)
    mask = torch.ones(scores.shape)
    for i in range(steps):  # per query step, everything outside ±dilation is masked
        if i - block.dilation > 0:
            mask[:, :, i, : i - block.dilation] = 0
        if i + block.dilation + 1 < steps:
            mask[:, :, i, i + block.dilation + 1 :] = 0
    weights = scores.masked_fill(mask == 0, -1e9).softmax(-1)
    attended = (weights @ v).transpose(1, 2).reshape(batch, steps, channels)
    y = x + block.drop(block.out(attended))
    return y + block.drop(block.feedforward(block.norm_ff(y)))


def timed(step, x: torch.Tensor, repeats: int) -> float:
    """Median ms of one forward and backward pass."""
    times = []
    for _ in range(repeats + 2):
        x.grad = None
        start = time.perf_counter()
        step(x).sum().backward()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"batch {args.batch}, {args.steps} steps, width {args.width}, 8 heads, {torch.get_num_threads()} threads; "
          f"median ms of forward + backward over {args.repeats} runs")  # fmt: skip
    print(f"{'dilation':>8} {'loop mask ms':>13} {'convforge ms':>13} {'speed-up':>9}")
    for dilation in (1, 2, 4, 8):
        block = BandMaskedAttention(args.width, 8, dilation).eval()  # no dropout: the two must agree
        x = torch.randn(args.batch, args.steps, args.width, requires_grad=True)
        assert torch.allclose(block(x), loop_mask_attention(block, x), atol=1e-4)
        loop = timed(lambda t, b=block: loop_mask_attention(b, t), x, args.repeats)
        ours = timed(block, x, args.repeats)
        print(f"{dilation:>8} {loop:>13.2f} {ours:>13.2f} {loop / ours:>8.2f}×")


if __name__ == "__main__":
    main()
