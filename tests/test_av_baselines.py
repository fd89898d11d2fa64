"""The baselines MM-Pyramid is measured against: what each can and cannot see."""

import pytest
import torch

from convforge import profile
from convforge.models import create_model, list_models
from convforge.nn.audio_guided_attention import AudioGuidedAttention
from convforge.nn.hybrid_attention import HybridAttention


def test_every_av_event_model_maps_audio_and_visual_to_segment_and_video_logits_and_trains():
    assert list_models(task="av-event") == ["av_segment_mlp", "avel", "han_ave", "mm_pyramid_ave"]
    assert list_models(task="av-parse") == ["han_llp", "mm_pyramid_llp"]
    for name in list_models(task="av-event"):
        model = create_model(name, width=32)
        segments, videos = model(torch.randn(3, 10, 128), torch.randn(3, 10, 7, 7, 512))
        assert segments.shape == (3, 10, 29) and videos.shape == (3, 29), name
        (segments.sum() + videos.sum()).backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad), name


def test_the_segment_mlp_has_no_temporal_context():
    model = create_model("av_segment_mlp", width=32).eval()
    audio, visual = torch.randn(1, 10, 128), torch.randn(1, 10, 512)
    changed = audio.clone()
    changed[0, 4] += 1.0
    with torch.no_grad():
        before, after = model(audio, visual)[0], model(changed, visual)[0]
    moved = (before - after).abs().amax(-1)[0]
    assert moved[4] > 0 and torch.all(moved[torch.arange(10) != 4] == 0)


def test_the_temporal_models_see_other_segments():
    for name in ("avel", "han_ave", "mm_pyramid_ave"):
        model = create_model(name, width=32).eval()
        audio, visual = torch.randn(1, 10, 128), torch.randn(1, 10, 512)
        changed = audio.clone()
        changed[0, 4] += 1.0
        with torch.no_grad():
            moved = (model(audio, visual)[0] - model(changed, visual)[0]).abs().amax(-1)[0]
        assert (moved[torch.arange(10) != 4] > 0).any(), name


def test_audio_guided_attention_is_a_convex_combination_of_the_regions():
    torch.manual_seed(0)
    attention = AudioGuidedAttention(6, 6, hidden=8).double()
    regions = torch.randn(1, 1, 3, 6, dtype=torch.float64)
    out = attention(torch.randn(1, 1, 6, dtype=torch.float64), regions)
    assert out.shape == (1, 1, 6)
    weights = torch.linalg.lstsq(regions[0, 0].T, out[0, 0, :, None]).solution.squeeze()
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-9) and bool((weights > 0).all())
    single = torch.randn(1, 2, 1, 6, dtype=torch.float64)
    assert torch.allclose(attention(torch.randn(1, 2, 6, dtype=torch.float64), single), single[:, :, 0])


def test_one_hybrid_attention_layer_serves_both_directions():
    layer = HybridAttention(16, heads=2).eval()
    a, v = torch.randn(2, 10, 16), torch.randn(2, 10, 16)
    out_a, out_v = layer(a, v)
    assert torch.allclose(out_a, layer.one_way(a, v)) and torch.allclose(out_v, layer.one_way(v, a))


def test_lstm_cost_is_counted():
    result = profile(create_model("avel", width=16), ((10, 128), (10, 512)))
    assert result.uncounted_ops == {}
    # two bidirectional LSTMs: per step and direction 4·16·(input + 16) MACs, 10 steps
    lstm = 2 * 10 * 4 * 16 * (128 + 16) + 2 * 10 * 4 * 16 * (512 + 16)
    assert result.by_category["matmul"] >= lstm


def test_zero_heads_is_one_sentence():
    from convforge.errors import ConvforgeError

    for name in ("mm_pyramid_ave", "han_ave"):
        with pytest.raises(ConvforgeError, match="heads"):
            create_model(name, heads=0)
