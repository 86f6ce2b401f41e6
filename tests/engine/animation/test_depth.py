"""MiDaS DPT depth: preprocessing size, tiny model output, DPT-Large key layout, weight loading."""
import pytest
import torch

from engine.animation.depth import (
    DPT_LARGE,
    DPT_TINY,
    DPTDepth,
    build_depth_model,
    estimate_depth,
    load_dpt_state,
    midas_input_size,
)
from engine.errors import ModelError


@pytest.mark.parametrize("hw,target,expected", [((768, 1280), 384, (384, 640)), ((512, 512), 384, (384, 384)),
                                                ((64, 64), 384, (384, 384)), ((576, 1024), 384, (384, 672)),
                                                ((48, 80), 64, (32, 64))])
def test_minimal_resize_keeps_aspect_and_multiples_of_32(hw, target, expected):
    assert midas_input_size(*hw, target) == expected


@pytest.fixture(scope="module")
def tiny():
    return build_depth_model("tiny", "cpu", seed=0)


def test_tiny_model_gives_finite_depth_of_frame_size(tiny):
    assert not tiny.training
    assert not any(p.requires_grad for p in tiny.parameters())
    frame = torch.rand(1, 3, 48, 80, generator=torch.Generator().manual_seed(0))
    depth = estimate_depth(tiny, frame)
    assert depth.shape == (48, 80) and depth.dtype == torch.float32
    assert torch.isfinite(depth).all()
    # DD units: (50 - d)/19 with the non-negative MiDaS output d ≥ 0 gives at most 50/19
    # (plus a little bicubic overshoot from the final resize, as in DD).
    assert depth.max().item() <= 50 / 19 + 0.05


def test_tiny_model_is_seeded(tiny):
    frame = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    again = build_depth_model("tiny", "cpu", seed=0)
    assert torch.equal(estimate_depth(tiny, frame), estimate_depth(again, frame))


def _meta_large_state():
    with torch.device("meta"):
        model = DPTDepth(DPT_LARGE)
    return model.state_dict()


def test_large_layout_landmark_keys_and_shapes():
    shapes = {k: tuple(v.shape) for k, v in _meta_large_state().items()}
    landmarks = {
        "pretrained.model.cls_token": (1, 1, 1024),
        "pretrained.model.pos_embed": (1, 577, 1024),
        "pretrained.model.patch_embed.proj.weight": (1024, 3, 16, 16),
        "pretrained.model.blocks.23.attn.qkv.weight": (3072, 1024),
        "pretrained.model.blocks.23.mlp.fc1.weight": (4096, 1024),
        "pretrained.model.norm.weight": (1024,),
        "pretrained.act_postprocess1.0.project.0.weight": (1024, 2048),
        "pretrained.act_postprocess1.3.weight": (256, 1024, 1, 1),
        "pretrained.act_postprocess1.4.weight": (256, 256, 4, 4),     # ConvTranspose2d ×4
        "pretrained.act_postprocess2.4.weight": (512, 512, 2, 2),     # ConvTranspose2d ×2
        "pretrained.act_postprocess3.3.weight": (1024, 1024, 1, 1),
        "pretrained.act_postprocess4.4.weight": (1024, 1024, 3, 3),   # stride-2 conv
        "scratch.layer1_rn.weight": (256, 256, 3, 3),
        "scratch.layer4_rn.weight": (256, 1024, 3, 3),
        "scratch.refinenet4.resConfUnit1.conv1.weight": (256, 256, 3, 3),
        "scratch.refinenet1.resConfUnit2.conv2.bias": (256,),
        "scratch.refinenet1.out_conv.weight": (256, 256, 1, 1),
        "scratch.output_conv.0.weight": (128, 256, 3, 3),
        "scratch.output_conv.2.weight": (32, 128, 3, 3),
        "scratch.output_conv.4.weight": (1, 32, 1, 1),
        "scratch.output_conv.4.bias": (1,),
    }
    for key, shape in landmarks.items():
        assert shapes.get(key) == shape, key
    assert "scratch.layer1_rn.bias" not in shapes                      # bias-free projections
    assert "pretrained.act_postprocess3.4.weight" not in shapes        # stage 3 keeps the 1/16 grid
    assert not any(k.startswith("pretrained.model.head") for k in shapes)
    assert all(k.startswith(("pretrained.", "scratch.")) for k in shapes)
    # 294 ViT-L tensors (no classifier) + 22 reassemble + 4 projections + 4×10 fusion + 6 head.
    assert len(shapes) == 366


def test_state_dict_round_trip_with_classifier_and_wrapper(tiny, tmp_path):
    state = {k: v.clone() for k, v in tiny.state_dict().items()}
    state["pretrained.model.head.weight"] = torch.zeros(1000, DPT_TINY.vit_features)  # unused, dropped
    state["pretrained.model.head.bias"] = torch.zeros(1000)
    other = build_depth_model("tiny", "cpu", seed=7)
    load_dpt_state(other, {"model": state})
    frame = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(estimate_depth(other, frame), estimate_depth(tiny, frame))


def test_loading_into_a_meta_model_makes_it_real(tiny):
    # build_depth_model('real') builds on the meta device and adopts the file's tensors.
    with torch.device("meta"):
        model = DPTDepth(DPT_TINY)
    load_dpt_state(model, dict(tiny.state_dict()))
    assert not any(p.is_meta for p in model.parameters())
    frame = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(estimate_depth(model.eval(), frame), estimate_depth(tiny, frame))


def test_mismatched_state_is_a_model_error(tiny):
    state = dict(tiny.state_dict())
    del state["scratch.output_conv.4.weight"]
    with pytest.raises(ModelError, match="missing: scratch.output_conv.4.weight"):
        load_dpt_state(build_depth_model("tiny", "cpu"), state)
    state = dict(tiny.state_dict())
    state["scratch.output_conv.4.bias"] = torch.zeros(2)
    with pytest.raises(ModelError, match="wrong shape"):
        load_dpt_state(build_depth_model("tiny", "cpu"), state)


def test_real_weights_missing_without_download():
    with pytest.raises(ModelError, match="disco models download"):
        build_depth_model("real", "cpu", allow_download=False)


def test_unknown_kind():
    with pytest.raises(ValueError):
        build_depth_model("huge", "cpu")


@pytest.mark.slow
def test_full_size_random_model_runs():
    model = build_depth_model("random", "cpu", seed=0)
    assert sum(p.numel() for p in model.parameters()) > 300_000_000
    frame = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    depth = estimate_depth(model, frame)
    assert depth.shape == (64, 96) and torch.isfinite(depth).all()
    # The real layout loads into itself strictly (as the MiDaS file must).
    load_dpt_state(model, dict(model.state_dict()))
