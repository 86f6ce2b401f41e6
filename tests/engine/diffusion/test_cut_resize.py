"""The cut resize reproduces DD's (ResizeRight's) border handling.

The reference below is written from ResizeRight's documented math, independently of the engine:
per axis, output pixel o looks at input position p = o/s + (n_in − 1)/2 − (n_out − 1)/(2s) with
s = n_out/n_in; its field of view is the integer taps within half the kernel's support of p; the
weights are the cubic kernel (a = −0.5, support 4), stretched to s·cubic(s·d) with support 4/s
when shrinking (antialiasing), normalised to sum to 1 over the whole field of view; taps outside
the image read zeros (constant padding). Applied per axis, it is a dense [n_out, n_in] matrix.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.diffusion.cutouts import edge_factors, resize


def keys_cubic(d: torch.Tensor) -> torch.Tensor:
    d = d.abs()
    return ((1.5 * d**3 - 2.5 * d**2 + 1) * (d <= 1)
            + (-0.5 * d**3 + 2.5 * d**2 - 4 * d + 2) * ((d > 1) & (d <= 2)))


def resize_right_matrix(n_in: int, n_out: int) -> torch.Tensor:
    scale = n_out / n_in
    if scale == 1:
        return torch.eye(n_in, dtype=torch.float64)  # ResizeRight skips an axis with scale 1
    support = 4.0 / scale if scale < 1 else 4.0
    kernel = (lambda d: scale * keys_cubic(scale * d)) if scale < 1 else keys_cubic
    out = torch.arange(n_out, dtype=torch.float64)
    grid = out / scale + (n_in - 1) / 2 - (n_out - 1) / (2 * scale)
    eps = torch.finfo(torch.float32).eps
    left = torch.ceil(grid - support / 2 - eps).long()
    view = left[:, None] + torch.arange(math.ceil(support - eps))           # [n_out, taps]
    weights = kernel(grid[:, None] - view)
    weights = weights / weights.sum(1, keepdim=True)
    matrix = torch.zeros(n_out, n_in, dtype=torch.float64)
    inside = (view >= 0) & (view < n_in)                                     # zeros elsewhere
    rows = torch.arange(n_out)[:, None].expand_as(view)
    matrix.index_put_((rows[inside], view[inside]), weights[inside], accumulate=True)
    return matrix


def resize_right(x: torch.Tensor, n_out: int) -> torch.Tensor:
    wy = resize_right_matrix(x.shape[-2], n_out)
    wx = resize_right_matrix(x.shape[-1], n_out)
    return (wy @ x.double() @ wx.T).float()


@pytest.mark.parametrize("h,w,size", [
    (200, 200, 64),    # an inner cut shrunk ~3×
    (97, 97, 32),      # an odd size
    (64, 64, 64),      # no resize
    (40, 40, 64),      # growing (the image smaller than CLIP's input): plain cubic
    (80, 48, 32),      # an overview of a non-square padded image: each axis its own scale
])
def test_cut_resize_matches_resize_right_math(h, w, size):
    cut = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    ours = resize(cut, size)
    assert ours.shape == (2, 3, size, size)
    assert (ours - resize_right(cut, size)).abs().max() < 1e-4


def test_borders_darken_as_in_dd_and_interior_is_untouched():
    """The point of the edge factor: a flat image stays flat inside and dims at the border,
    where torch's renormalised kernel alone would keep it flat."""
    flat = torch.ones(1, 3, 300, 300)
    ours = resize(flat, 64)
    renormalised = F.interpolate(flat, size=(64, 64), mode="bicubic", align_corners=False, antialias=True)
    assert torch.allclose(renormalised, flat[..., :64, :64], atol=1e-5)
    assert torch.allclose(ours[..., 4:-4, 4:-4], renormalised[..., 4:-4, 4:-4], atol=1e-6)
    assert ours[0, 0, 0, 32] < 0.95 and ours[0, 0, 0, 0] < ours[0, 0, 0, 32]


def test_edge_factors_are_one_inside_and_symmetric():
    factors = edge_factors(500, 224)
    assert all(f == 1.0 for f in factors[5:-5])
    assert factors == pytest.approx(tuple(reversed(factors)), abs=1e-12)
    assert edge_factors(224, 224) == (1.0,) * 224
