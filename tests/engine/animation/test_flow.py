"""engine.animation.flow: warp and blend math exactly, RAFT plumbing (shapes, resizing, units) with seeded
random weights, and the registry entries for torchvision's RAFT files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.animation.flow import (
    blend_init,
    build_raft,
    flow_between,
    load_raft,
    random_raft,
    warp_with_flow,
)
from engine.errors import ModelError, SpecError
from engine.models.registry import get_model


def ramp_image(h: int = 12, w: int = 16) -> torch.Tensor:
    """[3, H, W] with distinct values per pixel, in [0, 1]."""
    xs = torch.arange(w).float().view(1, 1, w).expand(3, h, w)
    ys = torch.arange(h).float().view(1, h, 1).expand(3, h, w)
    return (xs + ys * w) / (h * w)


def save_flow(flow: torch.Tensor, path) -> np.ndarray:
    """A flow as DD stores it (float32 [H, W, 2] .npy), read back from the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, flow.permute(1, 2, 0).numpy().astype(np.float32))
    return np.load(path)


def test_constant_flow_is_a_shift():
    image = ramp_image()
    flow = torch.zeros(2, 12, 16)
    flow[0] = 3  # sample 3 pixels to the right: content moves 3 pixels left
    out = warp_with_flow(image, flow)
    assert torch.allclose(out[:, :, :13], image[:, :, 3:], atol=1e-5)
    assert torch.allclose(out[:, :, 13:], image[:, :, 15:16].expand(3, 12, 3), atol=1e-5)  # border repeats
    flow = torch.zeros(2, 12, 16)
    flow[1] = -2  # sample 2 rows up: content moves down
    out = warp_with_flow(image.unsqueeze(0), flow)
    assert out.shape == (1, 3, 12, 16) and torch.allclose(out[0, :, 2:], image[:, :10], atol=1e-5)


def test_zero_flow_is_identity_and_half_pixel_flow_interpolates():
    image = ramp_image()
    assert torch.allclose(warp_with_flow(image, torch.zeros(2, 12, 16)), image, atol=1e-6)
    flow = torch.zeros(2, 12, 16)
    flow[0] = 0.5
    out = warp_with_flow(image, flow)
    assert torch.allclose(out[:, :, :15], (image[:, :, :15] + image[:, :, 1:]) / 2, atol=1e-5)


def test_warp_keeps_pil_and_array_types_and_reads_dd_npy_layout(tmp_path):
    array = (np.arange(8 * 8 * 3) % 256).astype(np.uint8).reshape(8, 8, 3)
    flow = torch.zeros(2, 8, 8)
    flow[0] = 1
    out = warp_with_flow(array, flow)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and np.array_equal(out[:, :7], array[:, 1:])
    stored = save_flow(flow, tmp_path / "flo" / "0001.npy")
    assert stored.shape == (8, 8, 2) and stored.dtype == np.float32
    pil = warp_with_flow(Image.fromarray(array), stored)  # [H, W, 2] as DD saves it
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), out)
    with pytest.raises(ValueError, match=r"must be \[2, 8, 8\]"):
        warp_with_flow(array, torch.zeros(2, 4, 4))


def test_blend_init_math():
    raw, warped = torch.full((3, 4, 4), 0.2), torch.full((3, 4, 4), 0.8)
    assert torch.allclose(blend_init(raw, warped, 0.25), torch.full((3, 4, 4), 0.35))
    assert torch.equal(blend_init(raw, warped, 0.0), raw) and torch.equal(blend_init(raw, warped, 1.0), warped)
    a, b = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 200, np.uint8)
    assert blend_init(a, b, 0.999).tolist() == [[[200] * 3] * 2] * 2  # 199.8 rounds to 200
    out = blend_init(Image.fromarray(a), Image.fromarray(b), 0.5)
    assert isinstance(out, Image.Image) and np.asarray(out)[0, 0].tolist() == [100, 100, 100]
    with pytest.raises(SpecError, match="video_init_flow_blend must be between 0 and 1") as err:
        blend_init(raw, warped, 1.5)
    assert err.value.param == "video_init_flow_blend"


@pytest.fixture(scope="module")
def tiny_raft():
    return random_raft("small", seed=0)


def test_random_raft_is_seeded():
    a, b = random_raft("small", seed=3), random_raft("small", seed=3)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not a.training


def test_flow_between_shapes_resizing_and_units(tiny_raft, monkeypatch):
    rng = np.random.default_rng(0)
    frame_a = rng.integers(0, 256, (60, 44, 3), dtype=np.uint8)  # not multiples of 8
    frame_b = np.roll(frame_a, 2, axis=1)
    flow = flow_between(tiny_raft, frame_a, frame_b, iters=2)
    assert flow.shape == (2, 60, 44) and flow.dtype == torch.float32 and torch.isfinite(flow).all()

    seen = {}
    real_forward = tiny_raft.forward

    def constant_flow(image1, image2, num_flow_updates=12):
        seen.update(shape=tuple(image1.shape), lo=float(image1.min()), hi=float(image1.max()), iters=num_flow_updates)
        real_forward(image1, image2, num_flow_updates=1)
        out = torch.zeros(1, 2, *image1.shape[-2:])
        out[:, 0], out[:, 1] = 8.0, 4.0  # in RAFT's (resized) pixels
        return [out]

    monkeypatch.setattr(tiny_raft, "forward", constant_flow)
    flow = flow_between(tiny_raft, Image.fromarray(frame_a), Image.fromarray(frame_b), iters=5)
    assert seen["shape"] == (1, 3, 128, 128) and seen["iters"] == 5  # RAFT's minimum side is 128
    assert -1 <= seen["lo"] < -0.9 and 0.9 < seen["hi"] <= 1  # normalised to [-1, 1]
    # 128 -> 44 wide and 128 -> 60 high: the flow is rescaled into the frame's own pixels
    assert torch.allclose(flow[0], torch.full((60, 44), 8 * 44 / 128))
    assert torch.allclose(flow[1], torch.full((60, 44), 4 * 60 / 128))
    big = np.zeros((130, 200, 3), np.uint8)
    flow_between(tiny_raft, big, big)
    assert seen["shape"] == (1, 3, 136, 200) and seen["iters"] == 20  # next multiples of 8; DD's 20 iterations


def test_flow_between_rejects_mismatched_frames(tiny_raft):
    with pytest.raises(ValueError, match="same size"):
        flow_between(tiny_raft, np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(SpecError, match="at least 1"):
        flow_between(tiny_raft, np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8), iters=0)


def test_registry_entries_match_torchvision():
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights
    for name, weights in [("raft_large_C_T_SKHT_V2", Raft_Large_Weights.DEFAULT),
                          ("raft_large_C_T_V2", Raft_Large_Weights.C_T_V2),
                          ("raft_small_C_T_V2", Raft_Small_Weights.C_T_V2)]:
        entry = get_model(name)
        assert entry.kind == "flow" and entry.urls == (weights.url,) and entry.sha256 is None
        assert weights.url.endswith(f"-{entry.config['sha256_prefix']}.pth")
        assert sum(p.numel() for p in build_raft(entry.config["variant"]).parameters()) == weights.meta["num_params"]


def test_load_raft_checks_the_prefix_and_the_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCO_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="is missing"):
        load_raft("raft_small_C_T_V2")
    entry = get_model("raft_small_C_T_V2")
    torch.save(random_raft("small", seed=1).state_dict(), tmp_path / entry.filename)
    with pytest.raises(ModelError, match="published checksum prefix 01064c6d"):
        load_raft("raft_small_C_T_V2")
    with pytest.raises(ModelError, match="not an optical-flow model"):
        load_raft("lpips_vgg16")
