"""Loss formulas and the gradient clamp against hand-computed values."""
import math

import pytest
import torch

from engine.diffusion.losses import (
    clamp_grad_rms,
    prompt_loss,
    range_loss,
    sat_loss,
    spherical_dist_loss,
    tv_loss,
    zero_if_nan,
)


def test_spherical_distance_is_half_the_squared_angle():
    x = torch.tensor([[1.0, 0.0]])
    for angle in (0.0, 0.3, math.pi / 2, 2.0, math.pi):
        y = torch.tensor([[math.cos(angle), math.sin(angle)]]) * 3.0  # length must not matter
        assert spherical_dist_loss(x, y).item() == pytest.approx(angle ** 2 / 2, abs=1e-5)


def test_tv_loss_by_hand():
    # One channel, 2×2: [[0, 1], [2, 4]]; replicate-padded forward differences.
    x = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # dx: (1-0), (1-1)=0 | (4-2), (4-4)=0 ; dy: (2-0), (4-1) | (2-2)=0, (4-4)=0
    expected = ((1 + 0 + 4 + 0) + (4 + 9 + 0 + 0)) / 4
    assert tv_loss(x).item() == pytest.approx(expected)


def test_range_and_saturation_losses_by_hand():
    x = torch.tensor([[[[-1.5, 0.0], [1.0, 3.0]]]])
    assert range_loss(x).item() == pytest.approx((0.25 + 0 + 0 + 4.0) / 4)
    assert sat_loss(x).item() == pytest.approx((0.5 + 0 + 0 + 2.0) / 4)
    inside = torch.rand(1, 3, 4, 4) * 2 - 1
    assert range_loss(inside).item() == 0 and sat_loss(inside).item() == 0


def test_prompt_loss_weights_and_averages_over_cuts():
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    weights = torch.tensor([0.75, 0.25])
    embeds = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # two cuts of one image
    # Cut 1: distances (0, π²/8); cut 2: (π²/8, 0). Weighted: π²/32 and 3π²/32; mean π²/16.
    assert prompt_loss(embeds, targets, weights, n_cuts=2).item() == pytest.approx(math.pi ** 2 / 16, rel=1e-5)


def test_clamp_caps_the_rms_and_keeps_direction():
    grad = torch.tensor([3.0, -4.0, 0.0, 0.0])  # RMS = 2.5
    clamped = clamp_grad_rms(grad, 0.05)
    assert clamped.pow(2).mean().sqrt().item() == pytest.approx(0.05)
    assert torch.allclose(clamped / clamped.norm(), grad / grad.norm())
    small = torch.tensor([0.01, -0.01])
    assert torch.equal(clamp_grad_rms(small, 0.05), small)
    assert torch.equal(clamp_grad_rms(torch.zeros(3), 0.05), torch.zeros(3))


def test_nan_guard_zeroes_the_whole_gradient():
    grad, flag = zero_if_nan(torch.tensor([1.0, float("nan"), 2.0]))
    assert torch.equal(grad, torch.zeros(3)) and bool(flag)
    grad, flag = zero_if_nan(torch.tensor([1.0, 2.0]))
    assert torch.equal(grad, torch.tensor([1.0, 2.0])) and not bool(flag)
