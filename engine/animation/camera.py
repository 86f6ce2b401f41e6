"""Disco Diffusion's 3D camera warp and VR eye views, without pytorch3d or files on disk.

What DD does (research §1.12, DD's ``disco_xform_utils.transform_image_3d``), restated here in
plain matrix algebra:

* Points: a pixel grid x, y ∈ [-1, 1] (``linspace``, so the corner pixels sit exactly on ±1,
  x to the right, y down) with z = the depth map (DD units, see ``engine.animation.depth``).
* Cameras follow pytorch3d's row-vector convention: a world point p (a row) goes to the view as
  ``p_view = p · R + T``, then through the FoV perspective matrix ``K`` (``fov_projection``) and
  a division by w = z_view. Two cameras: the old one (R = I, T = 0) and the new one (R, T).
* offset = projected_xy(new) − projected_xy(old); the sampling grid is the identity affine grid
  (``align_corners=False`` pixel centres) minus that offset; the frame is resampled with
  ``grid_sample``.

Sign conventions, as DD's ``do_3d_step`` sets them: ``warp_3d`` takes DD's user translation
(tx, ty, tz) and turns it into T = [−tx, +ty, −tz] · TRANSLATION_SCALE (1/200), and DD's user
rotation in degrees into ``euler_to_matrix(radians, 'XYZ')``. With a flat scene, positive tx
moves the picture content to the left (the camera moves right); positive tz enlarges the
picture (the camera moves forward, zooming in).

Quirks kept on purpose, because they shape how DD animations look: the projection divides x and
y by tan(fov/2)·z, so the size of the motion depends on fov and depth, and a z rotation rotates
the image by roughly angle/(tan(fov/2)·z) rather than by the angle itself (exactly the angle to
first order only where tan(fov/2)·z = 1). near and far only reach the projected z, which is
discarded, so they have no effect on the warp (checked by a test).

The +1/512 offset: DD adds ``1/512 − 1e-4`` to the frame before sampling because it then saves
the frame as an 8-bit PNG with ``ToPILImage`` (which truncates), and the offset turns truncation
into rounding. Our frames stay float tensors between steps, so by default (``png_offset=False``)
no offset is added: it would brighten every frame by half a level and accumulate over an
animation. Pass ``png_offset=True`` when the result will be quantised by truncation.

Frames are [1, 3, H, W] in [0, 1]; results are clamped to [0, 1] like DD's. Nothing here touches
the disk; every tensor stays on the frame's device.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

TRANSLATION_SCALE = 1.0 / 200.0   # DD's TRANSLATION_SCALE: user units → camera units
PNG_OFFSET = 1.0 / 512.0 - 1e-4   # DD's pre-quantisation brightening (see module docstring)
SPHERICAL_MAGNITUDE = -0.4        # DD's fisheye strength for VR eye views
_MIN_DEPTH = 1e-4                  # |z| floor: DD divides by z unguarded and would produce inf/NaN


def _axis_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """The 3×3 rotation about one axis, in the column-vector form pytorch3d builds."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "X":
        rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
    elif axis == "Y":
        rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
    elif axis == "Z":
        rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
    else:
        raise ValueError(f"rotation axis must be X, Y or Z, not {axis!r}")
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def euler_to_matrix(rx, ry, rz, convention: str = "XYZ", *, device=None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rotation matrix [3, 3] from Euler angles in radians, as pytorch3d's
    ``euler_angles_to_matrix(torch.tensor([rx, ry, rz]), convention)``: the product of the three
    single-axis matrices in the order the convention names them (for 'XYZ': Rx(rx) · Ry(ry) · Rz(rz)),
    the i-th angle going with the i-th letter."""
    if len(convention) != 3 or any(a not in "XYZ" for a in convention):
        raise ValueError(f"convention must be three letters from X, Y, Z, not {convention!r}")
    if convention[1] in (convention[0], convention[2]):
        raise ValueError(f"invalid Euler convention {convention!r}: consecutive axes repeat")
    angles = [torch.as_tensor(a, dtype=dtype, device=device) for a in (rx, ry, rz)]
    out = _axis_rotation(convention[0], angles[0])
    for axis, angle in zip(convention[1:], angles[1:]):
        out = out @ _axis_rotation(axis, angle)
    return out


def fov_projection(fov_degrees: float, aspect: float = 1.0, near: float = 1.0, far: float = 100.0,
                   *, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """pytorch3d's FoVPerspectiveCameras projection (degrees=True), column-vector form [4, 4].

    For a view-space point (x, y, z, 1): clip = K · p and NDC = clip[:3] / clip[3] with clip[3] = z,
    so x_ndc = x / (tan(fov/2) · aspect · z), y_ndc = y / (tan(fov/2) · z), and z_ndc maps
    near → 0 and far → 1. pytorch3d stores the transpose of this (row vectors).
    """
    if not 0 < fov_degrees < 180:
        raise ValueError(f"fov must be between 0 and 180 degrees, got {fov_degrees}")
    if near == far:
        raise ValueError("near and far planes must differ")
    tan_half = math.tan(math.radians(fov_degrees) / 2)
    max_y = tan_half * near
    max_x = max_y * aspect
    k = torch.zeros(4, 4, dtype=dtype, device=device)
    k[0, 0] = 2 * near / (2 * max_x)
    k[1, 1] = 2 * near / (2 * max_y)
    # K[0, 2] and K[1, 2] are (max + min) / (max − min) = 0 for the symmetric frustum.
    k[3, 2] = 1.0
    k[2, 2] = far / (far - near)
    k[2, 3] = -(far * near) / (far - near)
    return k


def project_points(points: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
                   projection: torch.Tensor) -> torch.Tensor:
    """Project world points [P, 3] (rows) through camera (R, T) and K; returns NDC points [P, 3]."""
    view = points @ rotation + translation           # pytorch3d: world→view is p·R + T (row vectors)
    homo = torch.cat([view, torch.ones_like(view[:, :1])], dim=1)
    clip = homo @ projection.T
    w = clip[:, 3:]
    # Keep the sign but avoid dividing by ~0 (DD would produce inf here and then NaN grids).
    w = torch.where(w >= 0, w.clamp(min=_MIN_DEPTH), w.clamp(max=-_MIN_DEPTH))
    return clip[:, :3] / w


def flow_grid_3d(depth: torch.Tensor, rotation: torch.Tensor, translation: Sequence[float] | torch.Tensor,
                 fov: float, near: float, far: float) -> torch.Tensor:
    """DD's sampling grid [1, H, W, 2] for camera (R, T) over `depth` [H, W]: identity − offset.

    `rotation` is the 3×3 matrix R and `translation` the camera T itself (already scaled and signed).
    """
    h, w = depth.shape[-2:]
    device = depth.device
    z = depth.reshape(h, w).to(torch.float32)
    y, x = torch.meshgrid(torch.linspace(-1.0, 1.0, h, device=device),
                          torch.linspace(-1.0, 1.0, w, device=device), indexing="ij")
    points = torch.stack([x.flatten(), y.flatten(), z.flatten()], dim=1)
    k = fov_projection(fov, 1.0, near, far, device=device)   # DD: pixel aspect 1.0 ("really")
    rot = rotation.to(device=device, dtype=torch.float32).reshape(3, 3)
    trans = torch.as_tensor(translation, dtype=torch.float32, device=device).reshape(1, 3)
    old_xy = project_points(points, torch.eye(3, device=device), torch.zeros(1, 3, device=device), k)[:, :2]
    new_xy = project_points(points, rot, trans, k)[:, :2]
    offset = (new_xy - old_xy).reshape(1, h, w, 2)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=device).unsqueeze(0)
    base = F.affine_grid(identity, [1, 1, h, w], align_corners=False)
    return base - offset


def spherical_grid(h: int, w: int, magnitude: float = SPHERICAL_MAGNITUDE, *, device=None) -> torch.Tensor:
    """DD's VR fisheye grid [1, H, W, 2]: each point g moves by d·|d|·magnitude, d = centre − g."""
    y, x = torch.meshgrid(torch.linspace(-1.0, 1.0, h, device=device),
                          torch.linspace(-1.0, 1.0, w, device=device), indexing="ij")
    grid = torch.stack([x, y], dim=-1)
    d = -grid                                         # centre (0, 0) minus the point
    dist = torch.sqrt((d ** 2).sum(dim=-1, keepdim=True))
    return (grid + d * dist * magnitude).unsqueeze(0)


def _check_frame(frame: torch.Tensor, depth: torch.Tensor) -> None:
    if frame.dim() != 4 or frame.shape[0] != 1:
        raise ValueError(f"expected a frame of shape [1, C, H, W], got {tuple(frame.shape)}")
    if depth.shape[-2:] != frame.shape[-2:]:
        raise ValueError(f"depth {tuple(depth.shape)} does not match frame {tuple(frame.shape)}")


def warp_camera(frame: torch.Tensor, depth: torch.Tensor, rotation: torch.Tensor,
                translation: Sequence[float] | torch.Tensor, *, fov: float = 40.0, near: float = 200.0,
                far: float = 10000.0, padding_mode: str = "border", sampling_mode: str = "bicubic",
                spherical: bool = False, png_offset: bool = False) -> torch.Tensor:
    """Resample `frame` [1, 3, H, W] in [0, 1] as seen from camera (R, T) - DD's transform_image_3d.

    `translation` is the camera T itself (no scaling or sign flips here). With `spherical`, DD's VR
    path is followed exactly: both samplings use align_corners=True and the fisheye pass is
    bilinear with zero padding (DD's own choices, kept so eye views match DD's).
    """
    _check_frame(frame, depth)
    h, w = frame.shape[-2:]
    grid = flow_grid_3d(depth, rotation, translation, fov, near, far).to(frame.dtype)
    src = frame + PNG_OFFSET if png_offset else frame
    if spherical:
        staged = F.grid_sample(src, grid, mode=sampling_mode, padding_mode=padding_mode, align_corners=True)
        fisheye = spherical_grid(h, w, device=frame.device).to(frame.dtype)
        out = F.grid_sample(staged, fisheye, mode="bilinear", padding_mode="zeros", align_corners=True)
    else:
        out = F.grid_sample(src, grid, mode=sampling_mode, padding_mode=padding_mode, align_corners=False)
    return out.clamp(0.0, 1.0)


def dd_camera(translate: Sequence[float], rotate: Sequence[float], *, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """DD's user motion → camera (R, T): T = [−tx, +ty, −tz]/200, R = euler_to_matrix(radians(r), 'XYZ')."""
    tx, ty, tz = (float(v) for v in translate)
    t = torch.tensor([-tx, ty, -tz], dtype=torch.float32, device=device) * TRANSLATION_SCALE
    r = euler_to_matrix(*(math.radians(float(a)) for a in rotate), "XYZ", device=device)
    return r, t


def warp_3d(frame: torch.Tensor, depth: torch.Tensor, translate: Sequence[float] = (0.0, 0.0, 0.0),
            rotate: Sequence[float] = (0.0, 0.0, 0.0), fov: float = 40.0, near: float = 200.0,
            far: float = 10000.0, padding_mode: str = "border", sampling_mode: str = "bicubic",
            *, png_offset: bool = False) -> torch.Tensor:
    """DD's per-frame 3D motion of `frame` [1, 3, H, W] in [0, 1] over `depth` [H, W] (DD units).

    `translate` = DD's (translation_x, translation_y, translation_z) and `rotate` = DD's
    (rotation_3d_x, _y, _z) in degrees; defaults for fov/near/far/modes are DD 5.7's.
    Returns [1, 3, H, W] in [0, 1].
    """
    r, t = dd_camera(translate, rotate, device=frame.device)
    return warp_camera(frame, depth, r, t, fov=fov, near=near, far=far, padding_mode=padding_mode,
                       sampling_mode=sampling_mode, png_offset=png_offset)


def vr_eye_views(frame: torch.Tensor, depth: torch.Tensor, eye_angle: float = 0.5, ipd: float = 5.0,
                 fov: float = 40.0, near: float = 200.0, far: float = 10000.0, padding_mode: str = "border",
                 sampling_mode: str = "bicubic", *, spherical: bool = True,
                 png_offset: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """DD's VR (left, right) eye views of a finished frame (research §1.14).

    θ = radians(eye_angle). Left eye: T = (+cos θ · ipd/2 · 1/200, 0, 0), y rotation +θ; right eye:
    the mirror image (−x, −θ). DD always applies the spherical fisheye; `spherical=False` skips it.
    """
    theta = math.radians(eye_angle)
    views = []
    for side in (-1.0, 1.0):                     # DD's loop: i=0 left (−1), i=1 right (+1)
        ray_origin = math.cos(theta) * ipd / 2 * side
        t = torch.tensor([-ray_origin * TRANSLATION_SCALE, 0.0, 0.0], device=frame.device)
        r = euler_to_matrix(0.0, -side * theta, 0.0, "XYZ", device=frame.device)
        views.append(warp_camera(frame, depth, r, t, fov=fov, near=near, far=far, padding_mode=padding_mode,
                                 sampling_mode=sampling_mode, spherical=spherical, png_offset=png_offset))
    return views[0], views[1]
