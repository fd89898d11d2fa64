"""MM-Pyramid as released (its used parameters) and its outputs."""

import torch

from convforge.models.mm_pyramid import MMPyramid

RELEASED_PARAMETERS = 43_995_725  # JustinYuu/MM_Pyramid at its defaults
NEVER_USED = 3_153_920 + 14 * 1_024  # template layers kept only to copy; each working attention's unused LayerNorm


def test_the_released_defaults_hold_exactly_the_parameters_the_release_uses():
    model = MMPyramid()  # width 512, 8 heads, feed-forward 512, 4 levels, 25 classes
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMETERS - NEVER_USED == 40_827_469


def test_outputs_are_video_and_segment_probabilities_for_two_streams():
    torch.manual_seed(0)
    model = MMPyramid(width=64, heads=4, feedforward=64, levels=2).eval()
    audio, visual, visual_3d = torch.randn(2, 10, 128), torch.randn(2, 80, 2048), torch.randn(2, 10, 512)
    global_probs, audio_probs, visual_probs, segments = model(audio, visual, visual_3d)
    assert global_probs.shape == audio_probs.shape == visual_probs.shape == (2, 25)
    assert segments.shape == (2, 10, 2, 25) and 0 <= float(segments.min()) and float(segments.max()) <= 1
    assert float(global_probs.max()) <= 1 + 1e-6
