"""Disco Diffusion's 2D animation motion, done in torch on the frame's own device.

DD 5.x warps the previous frame with OpenCV (research §1.11)::

    M = getRotationMatrix2D(centre, angle, zoom) · Translation(tx, ty)      (both as 3×3)
    frame = warpPerspective(frame, M, (W, H), borderMode=BORDER_WRAP)       (bilinear)

This module reproduces that without PNG round trips or OpenCV:

* Coordinates are OpenCV pixel coordinates: pixel (i, j) has its centre at x = j, y = i, y points
  down, and the rotation centre is (W // 2, H // 2) - integer division, as DD wrote it.
* ``M`` maps source pixels to destination pixels. Because the product is Rot · Trans, a point is
  first translated by (tx, ty) and then rotated/scaled about the centre. For pure translation the
  content moves by (+tx, +ty) pixels (right and down). A positive ``angle`` turns the content
  counter-clockwise as seen on screen (OpenCV's convention), and ``zoom > 1`` enlarges it.
* Each output pixel samples the source at ``M⁻¹ · (x, y)`` with bilinear interpolation, and
  coordinates outside the image are taken modulo the image size (BORDER_WRAP), so content that
  leaves one edge comes back on the opposite edge (and zooming out tiles the picture). Unlike
  OpenCV, the interpolation weights are exact floats, not quantised to 1/32 pixel, so results
  differ from DD's by far less than one 8-bit level.

The warp is linear in the pixel values, so it works for frames in [0, 1] or [-1, 1] alike and
keeps the range; the output has the input's shape [1, 3, H, W], dtype and device.
"""
from __future__ import annotations

import math

import torch


def motion_matrix_2d(width: int, height: int, angle: float, zoom: float, tx: float, ty: float) -> torch.Tensor:
    """DD's 3×3 source→destination matrix (float64, pixel coordinates as described above).

    Equals ``vstack(cv2.getRotationMatrix2D((W//2, H//2), angle, zoom), [0,0,1]) @ T(tx, ty)``.
    """
    cx, cy = float(width // 2), float(height // 2)
    rad = math.radians(angle)
    # Exact 0/1 for multiples of 90° so integer moves stay integer (sin(pi) is 1.2e-16, not 0).
    cos_a = _snap(math.cos(rad))
    sin_a = _snap(math.sin(rad))
    alpha, beta = zoom * cos_a, zoom * sin_a
    rot = torch.tensor([[alpha, beta, (1 - alpha) * cx - beta * cy],
                        [-beta, alpha, beta * cx + (1 - alpha) * cy],
                        [0.0, 0.0, 1.0]], dtype=torch.float64)
    trans = torch.tensor([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return rot @ trans


def _snap(value: float) -> float:
    for exact in (-1.0, 0.0, 1.0):
        if abs(value - exact) < 1e-12:
            return exact
    return value


def _inverse_affine(matrix: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of an affine 3×3 (keeps integer translations exact, unlike LU)."""
    a = matrix[:2, :2]
    t = matrix[:2, 2:]
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if abs(float(det)) < 1e-12:
        raise ValueError("2D motion matrix is singular (zoom must not be 0)")
    a_inv = torch.stack([torch.stack([a[1, 1], -a[0, 1]]), torch.stack([-a[1, 0], a[0, 0]])]) / det
    out = torch.eye(3, dtype=matrix.dtype)
    out[:2, :2] = a_inv
    out[:2, 2:] = -a_inv @ t
    return out


def warp_with_matrix(frame: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Warp `frame` [N, C, H, W] by a source→destination affine 3×3 with wrap-around bilinear sampling."""
    if frame.dim() != 4:
        raise ValueError(f"expected a frame of shape [N, C, H, W], got {tuple(frame.shape)}")
    n, c, h, w = frame.shape
    inv = _inverse_affine(matrix.to(torch.float64).cpu())
    # Coordinates in float64: at 4K, float32 loses the sub-pixel part of products like 0.9·3839.
    ys = torch.arange(h, dtype=torch.float64, device=frame.device)
    xs = torch.arange(w, dtype=torch.float64, device=frame.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    inv = inv.to(frame.device)
    src_x = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    src_y = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    return _sample_wrap(frame, src_x, src_y)


def _sample_wrap(frame: torch.Tensor, src_x: torch.Tensor, src_y: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling at float pixel coordinates [H, W], neighbours taken modulo the size."""
    n, c, h, w = frame.shape
    x0 = torch.floor(src_x)
    y0 = torch.floor(src_y)
    fx = (src_x - x0).to(frame.dtype)
    fy = (src_y - y0).to(frame.dtype)
    x0 = x0.long()
    y0 = y0.long()
    # Python-style modulo (torch.remainder) keeps negative coordinates in range: -1 -> w-1.
    xa, xb = torch.remainder(x0, w), torch.remainder(x0 + 1, w)
    ya, yb = torch.remainder(y0, h), torch.remainder(y0 + 1, h)
    flat = frame.reshape(n, c, h * w)

    def tap(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        index = (yy * w + xx).reshape(1, 1, -1).expand(n, c, -1)
        return torch.gather(flat, 2, index).reshape(n, c, h, w)

    top = tap(ya, xa) * (1 - fx) + tap(ya, xb) * fx
    bottom = tap(yb, xa) * (1 - fx) + tap(yb, xb) * fx
    return top * (1 - fy) + bottom * fy


def warp_2d(frame: torch.Tensor, angle: float, zoom: float, tx: float, ty: float) -> torch.Tensor:
    """DD's per-frame 2D motion: `angle` degrees (counter-clockwise on screen), `zoom` (>1 enlarges),
    then content moved by (tx, ty) pixels before the rotation - see the module docstring.

    `frame` is [1, 3, H, W] (any batch size works) in [0, 1] or [-1, 1]; the result keeps the
    shape, dtype, device and value range.
    """
    _, _, h, w = frame.shape
    if angle == 0 and zoom == 1 and tx == 0 and ty == 0:
        return frame.clone()  # the common "no motion" frame: skip the resampling
    return warp_with_matrix(frame, motion_matrix_2d(w, h, angle, zoom, tx, ty))
