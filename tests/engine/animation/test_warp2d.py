"""DD's 2D animation warp: matrix, identity, wrap-around translation, rotation direction, zoom."""
import math

import pytest
import torch

from engine.animation.warp2d import motion_matrix_2d, warp_2d, warp_with_matrix


def _frame(h, w, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_matrix_matches_hand_computed_opencv_values():
    # getRotationMatrix2D((32, 16), 0°, 2) = [[2, 0, -32], [0, 2, -16]], then · T(3, 5).
    m = motion_matrix_2d(64, 32, 0.0, 2.0, 3.0, 5.0)
    expected = torch.tensor([[2.0, 0.0, -26.0], [0.0, 2.0, -6.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(m, expected)
    # 90° about (32, 32) with zoom 1: alpha = 0, beta = 1.
    m = motion_matrix_2d(65, 65, 90.0, 1.0, 0.0, 0.0)
    assert torch.equal(m, torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 64.0], [0.0, 0.0, 1.0]], dtype=torch.float64))
    # Generic angle: alpha = zoom·cos, beta = zoom·sin.
    m = motion_matrix_2d(100, 50, 30.0, 1.5, 0.0, 0.0)
    a, b = 1.5 * math.cos(math.radians(30)), 1.5 * math.sin(math.radians(30))
    assert m[0, 0].item() == pytest.approx(a) and m[0, 1].item() == pytest.approx(b)
    assert m[0, 2].item() == pytest.approx((1 - a) * 50 - b * 25)
    assert m[1, 2].item() == pytest.approx(b * 50 + (1 - a) * 25)


def test_identity_returns_the_frame():
    frame = _frame(40, 56)
    assert torch.allclose(warp_2d(frame, 0.0, 1.0, 0.0, 0.0), frame, atol=1e-6)
    # The sampling path itself is exact at identity, too.
    assert torch.allclose(warp_with_matrix(frame, torch.eye(3, dtype=torch.float64)), frame, atol=1e-6)


@pytest.mark.parametrize("tx,ty", [(5, -3), (-17, 9), (64, 0), (0, -40)])
def test_integer_translation_is_roll_with_wrap(tx, ty):
    frame = _frame(40, 64, seed=1)
    out = warp_2d(frame, 0.0, 1.0, float(tx), float(ty))
    # Content moves right by tx and down by ty; what leaves one edge re-enters at the other.
    assert torch.allclose(out, torch.roll(frame, shifts=(ty, tx), dims=(-2, -1)), atol=1e-6)


def test_half_pixel_translation_blends_wrapped_neighbours():
    frame = _frame(16, 24, seed=2)
    out = warp_2d(frame, 0.0, 1.0, 0.5, 0.0)
    expected = 0.5 * (frame + torch.roll(frame, shifts=1, dims=-1))   # column 0 mixes in column W-1
    assert torch.allclose(out, expected, atol=1e-6)


def test_90_degrees_is_counter_clockwise_rot90():
    # Odd side: DD's centre W//2 is the true centre, so +90° is exactly rot90 (counter-clockwise on screen).
    frame = _frame(33, 33, seed=3)
    assert torch.allclose(warp_2d(frame, 90.0, 1.0, 0.0, 0.0), torch.rot90(frame, 1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(warp_2d(frame, -90.0, 1.0, 0.0, 0.0), torch.rot90(frame, -1, dims=(-2, -1)), atol=1e-5)
    # Even side: DD rotates about pixel 16, half a pixel off the centre, so the result is rot90
    # moved down one row (wrapped) - DD's own quirk, reproduced.
    frame = _frame(32, 32, seed=4)
    expected = torch.roll(torch.rot90(frame, 1, dims=(-2, -1)), shifts=1, dims=-2)
    assert torch.allclose(warp_2d(frame, 90.0, 1.0, 0.0, 0.0), expected, atol=1e-5)


def test_zoom_above_one_enlarges_a_centred_square():
    frame = torch.zeros(1, 3, 64, 64)
    frame[..., 24:41, 24:41] = 1.0            # 17×17 square centred on pixel (32, 32)
    out = warp_2d(frame, 0.0, 1.5, 0.0, 0.0)
    area_in = (frame[0, 0] > 0.5).sum().item()
    area_out = (out[0, 0] > 0.5).sum().item()
    assert area_out > 1.8 * area_in            # 1.5² = 2.25 times the area
    assert out[0, 0, 32, 32] == pytest.approx(1.0)
    # Zooming out shrinks it; with BORDER_WRAP the whole picture tiles, so the 64×64 image now
    # holds 2×2 half-size copies: the central 32×32 window holds one copy of a quarter the area.
    shrunk = warp_2d(frame, 0.0, 0.5, 0.0, 0.0)
    central = (shrunk[0, 0, 16:48, 16:48] > 0.5).sum().item()
    assert 0.15 * area_in < central < 0.4 * area_in
    assert (shrunk[0, 0] > 0.5).sum().item() == pytest.approx(4 * central, rel=0.2)


def test_keeps_shape_dtype_device_and_range():
    frame = _frame(20, 30, seed=5).double() * 2 - 1      # a [-1, 1] frame
    out = warp_2d(frame, 12.5, 1.1, 2.3, -4.7)
    assert out.shape == frame.shape and out.dtype == torch.float64 and out.device == frame.device
    assert out.min() >= -1 - 1e-9 and out.max() <= 1 + 1e-9


def test_zero_zoom_is_rejected():
    with pytest.raises(ValueError):
        warp_2d(_frame(8, 8), 0.0, 0.0, 0.0, 0.0)
