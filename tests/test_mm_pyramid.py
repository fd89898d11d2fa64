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


def test_the_registered_llp_model_is_the_released_one_and_width_128_is_the_cpu_size():
    from convforge.models import create_model, get_model_info

    info = get_model_info("mm_pyramid_llp")
    assert info.task == "av-parse" and info.input_size == ((10, 128), (80, 2048), (10, 512))
    assert sum(p.numel() for p in create_model("mm_pyramid_llp").parameters()) == 40_827_469
    small = create_model("mm_pyramid_llp", width=128)
    assert sum(p.numel() for p in small.parameters()) == 2_834_125
    assert len(create_model("mm_pyramid_llp", width=128, levels=2).trunk.units) == 2


def test_a_bad_width_or_level_count_is_one_sentence():
    import pytest

    from convforge.errors import ConvforgeError
    from convforge.models import create_model

    with pytest.raises(ConvforgeError, match="levels must be an integer from 1 to 8"):
        create_model("mm_pyramid_ave", levels=9)
    with pytest.raises(ConvforgeError, match="multiple of heads"):
        create_model("mm_pyramid_ave", width=100)


def test_the_profiler_counts_every_masked_attention_and_nothing_is_uncounted():
    from convforge import profile
    from convforge.models import create_model

    result = profile(create_model("mm_pyramid_llp"), ((10, 128), (80, 2048), (10, 512)))
    assert result.uncounted_ops == {}
    # per unit: two self- and two cross-attentions over 10 steps (dense 10×10, the band is not discounted), 4 units;
    # then each stream's level fusion: 10 steps × a 4×4 attention across the levels; Q·Kᵀ and A·V at width 512
    per_call = 10 * 10 * 2 * 512
    assert result.by_category["attention"] == 4 * 4 * per_call + 2 * 10 * 4 * 4 * 2 * 512


def test_ave_visual_maps_are_read_as_their_mean_over_regions():
    from convforge.models import create_model

    model = create_model("mm_pyramid_ave", width=32, heads=4).eval()
    audio, pooled = torch.randn(2, 10, 128), torch.randn(2, 10, 512)
    maps = pooled[:, :, None, None, :].expand(2, 10, 7, 7, 512)
    with torch.no_grad():
        a, b = model(audio, pooled), model(audio, maps)
    assert a[0].shape == (2, 10, 29) and a[1].shape == (2, 29)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)
