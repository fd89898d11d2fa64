"""MM-Pyramid (Yu et al., ACM MM 2022): a multimodal temporal pyramid for audio-visual video parsing.

Built from :mod:`convforge.nn.temporal_pyramid` with the released wiring (JustinYuu/MM_Pyramid):

1. Input projections: audio 128 → width; 2-D visual 2048 → width, averaged over the 8 frames of
   each second; 3-D visual 512 → width; the two visual streams concatenated and projected.
2. ``levels`` pyramid units at dilations 1, 2, 4, 8, …, each level kept.
3. Per stream, attention across the levels and their σ-weighted sum.
4. HAN's head: per-segment, per-stream class probabilities (sigmoid) and attention pooling over
   time and over the two streams into video-level probabilities (global, audio, visual).

Differences from the release, on purpose:

- **Streams in order.** The release concatenates [visual, audio] but reads index 0 as audio, so
  its visual stream is trained and scored as audio. convforge puts audio first, as HAN does.
- **Parameters.** The release holds 43,995,725 parameters, of which 3,168,256 are registered but
  never used: the template attention and feed-forward layers its capture and fusion modules
  keep only to copy (3,153,920), and the LayerNorm each of its 14 working attention layers
  registers but does not apply (14 × 1,024). convforge builds only what runs: 40,827,469 at the
  released defaults (width 512, 8 heads, feed-forward 512, 4 levels, 25 classes).
- The band mask is built once per length and dilation, on any device (the release rebuilds it in
  a Python loop at each call, on CUDA only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.errors import InvalidValueError
from convforge.nn.temporal_pyramid import LevelFusion, PyramidUnit


class MMPyramid(nn.Module):
    """MM-Pyramid for LLP: ``(audio [B, T, 128], visual [B, 8T, 2048], visual_3d [B, T, 512])`` → global, audio and
    visual video-level probabilities ``[B, classes]`` and per-segment probabilities ``[B, T, 2, classes]`` (audio
    first)."""

    def __init__(self, num_classes: int = 25, width: int = 512, heads: int = 8, feedforward: int = 512,
                 levels: int = 4, dropout: float = 0.2, audio_dim: int = 128, visual_dim: int = 2048,
                 visual_3d_dim: int = 512, frames_per_segment: int = 8) -> None:  # fmt: skip
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 8:
            raise InvalidValueError(f"levels must be an integer from 1 to 8, got {levels!r}")
        self.frames_per_segment = frames_per_segment
        self.audio_in = nn.Linear(audio_dim, width)
        self.visual_in = nn.Linear(visual_dim, width)
        self.visual_3d_in = nn.Linear(visual_3d_dim, width)
        self.visual_fuse = nn.Linear(2 * width, width)
        self.units = nn.ModuleList(PyramidUnit(width, 2**i, heads, feedforward, dropout) for i in range(levels))
        self.fuse_audio = LevelFusion(width, heads, feedforward, dropout)
        self.fuse_visual = LevelFusion(width, heads, feedforward, dropout)
        self.classify = nn.Linear(width, num_classes)
        self.attend_time = nn.Linear(width, num_classes)
        self.attend_stream = nn.Linear(width, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor,
                visual_3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        a = self.audio_in(audio)
        frames = self.visual_in(visual)  # [B, 8T, width]: the frames of each second averaged
        frames = F.avg_pool1d(frames.transpose(1, 2), self.frames_per_segment).transpose(1, 2)
        v = self.visual_fuse(torch.cat([frames, self.visual_3d_in(visual_3d)], -1))
        audio_levels, visual_levels = [], []
        for unit in self.units:
            a, v = unit(a, v)
            audio_levels.append(a)
            visual_levels.append(v)
        a = self.fuse_audio(torch.stack(audio_levels))
        v = self.fuse_visual(torch.stack(visual_levels))
        streams = torch.stack([a, v], dim=2)  # [B, T, 2, width], audio first
        segment_probs = torch.sigmoid(self.classify(streams))
        over_time = torch.softmax(self.attend_time(streams), dim=1)
        over_streams = torch.softmax(self.attend_stream(streams), dim=2)
        weighted = over_time * segment_probs
        global_probs = (weighted * over_streams).sum(dim=2).sum(dim=1)
        return global_probs, weighted[:, :, 0].sum(1), weighted[:, :, 1].sum(1), segment_probs
