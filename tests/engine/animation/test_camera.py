"""DD's 3D camera warp: Euler matrices, FoV projection, translation/rotation behaviour, VR eyes."""
import math

import pytest
import torch
import torch.nn.functional as F

from engine.animation.camera import (
    PNG_OFFSET,
    euler_to_matrix,
    flow_grid_3d,
    fov_projection,
    project_points,
    vr_eye_views,
    warp_3d,
)


def _pattern(h=64, w=64):
    """A smooth, non-symmetric RGB pattern in [0, 1]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    r = 0.5 + 0.4 * torch.sin(2 * math.pi * 3 * x)
    g = 0.5 + 0.4 * torch.cos(2 * math.pi * 2 * y)
    b = 0.5 + 0.4 * torch.sin(2 * math.pi * (2 * x + y))
    return torch.stack([r, g, b]).unsqueeze(0)


def test_single_axis_matrices_match_hand_computed():
    a = 0.3
    c, s = math.cos(a), math.sin(a)
    rx = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float32)
    ry = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32)
    rz = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float32)
    assert torch.allclose(euler_to_matrix(a, 0, 0), rx, atol=1e-6)
    assert torch.allclose(euler_to_matrix(0, a, 0), ry, atol=1e-6)
    assert torch.allclose(euler_to_matrix(0, 0, a), rz, atol=1e-6)


def test_xyz_composition_is_rx_ry_rz():
    a, b, g = 0.2, -0.5, 1.1
    m = euler_to_matrix(a, b, g, "XYZ", dtype=torch.float64)
    sa, ca, sb, cb, sg, cg = math.sin(a), math.cos(a), math.sin(b), math.cos(b), math.sin(g), math.cos(g)
    # Rx·Ry·Rz written out by hand: first row (cb·cg, −cb·sg, sb), last row below.
    expected_row0 = [cb * cg, -cb * sg, sb]
    expected_row2 = [sa * sg - ca * sb * cg, sa * cg + ca * sb * sg, ca * cb]
    assert m[0].tolist() == pytest.approx(expected_row0)
    assert m[2].tolist() == pytest.approx(expected_row2)
    assert torch.allclose(m @ m.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.det(m).item() == pytest.approx(1.0)
    # Other conventions multiply in their own order, angles paired with letters.
    zyx = euler_to_matrix(a, b, g, "ZYX", dtype=torch.float64)
    expected = (euler_to_matrix(0, 0, a, dtype=torch.float64) @ euler_to_matrix(0, b, 0, dtype=torch.float64)
                @ euler_to_matrix(g, 0, 0, dtype=torch.float64))
    assert torch.allclose(zyx, expected)
    with pytest.raises(ValueError):
        euler_to_matrix(0, 0, 0, "XXY")


def test_fov_projection_ndc():
    k = fov_projection(90.0, 1.0, 1.0, 100.0)
    pts = torch.tensor([[0.5, 0.25, 2.0], [0.0, 0.0, 1.0], [0.0, 0.0, 100.0]])
    ndc = project_points(pts, torch.eye(3), torch.zeros(1, 3), k)
    assert ndc[0, :2].tolist() == pytest.approx([0.25, 0.125])      # x/(tan45°·z)
    assert ndc[1, 2].item() == pytest.approx(0.0, abs=1e-6)         # near plane → 0
    assert ndc[2, 2].item() == pytest.approx(1.0, abs=1e-6)         # far plane → 1
    k2 = fov_projection(60.0, 2.0, 1.0, 100.0)
    assert k2[0, 0].item() == pytest.approx(1 / (math.tan(math.radians(30)) * 2))
    assert k2[1, 1].item() == pytest.approx(1 / math.tan(math.radians(30)))


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
def test_no_motion_is_identity(mode):
    frame = _pattern(48, 64)
    depth = 1.0 + torch.rand(48, 64)
    out = warp_3d(frame, depth, (0, 0, 0), (0, 0, 0), sampling_mode=mode)
    assert torch.allclose(out, frame, atol=1e-5)
    grid = flow_grid_3d(depth, torch.eye(3), (0.0, 0.0, 0.0), 40.0, 200.0, 10000.0)
    base = F.affine_grid(torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]), [1, 1, 48, 64], align_corners=False)
    assert torch.equal(grid, base)


def test_png_offset_brightens_by_dd_constant():
    frame = _pattern() * 0.5 + 0.25
    out = warp_3d(frame, torch.ones(64, 64), png_offset=True)
    assert (out - frame).mean().item() == pytest.approx(PNG_OFFSET, abs=1e-5)


def test_sideways_translation_of_flat_scene_is_uniform_shift():
    # fov 90° and depth 1 make tan(fov/2)·z = 1: camera T_x = −tx/200 moves the image by T_x·W/2 px.
    frame = _pattern(32, 64)
    depth = torch.ones(32, 64)
    out = warp_3d(frame, depth, (25.0, 0, 0), (0, 0, 0), fov=90.0, sampling_mode="bilinear")
    shift = 25.0 / 200 * 64 / 2                       # 4 px
    # Positive translation_x moves the content left (camera moves right); columns near the
    # border are clamped by padding_mode='border', so compare the interior.
    expected = torch.roll(frame, shifts=-int(shift), dims=-1)
    assert torch.allclose(out[..., 4:-8], expected[..., 4:-8], atol=1e-5)
    # Vertical: positive translation_y moves the content down here (T_y = +ty/200).
    frame_v = _pattern(64, 32)
    out_v = warp_3d(frame_v, torch.ones(64, 32), (0, 25.0, 0), (0, 0, 0), fov=90.0, sampling_mode="bilinear")
    assert torch.allclose(out_v[..., 8:-4, :], torch.roll(frame_v, shifts=4, dims=-2)[..., 8:-4, :], atol=1e-5)


def test_forward_translation_zooms_in():
    frame = torch.zeros(1, 3, 64, 64)
    frame[..., 24:40, 24:40] = 1.0
    out = warp_3d(frame, torch.ones(64, 64) * 2, (0, 0, 40.0), (0, 0, 0), sampling_mode="bilinear")
    assert (out[0, 0] > 0.5).sum() > (frame[0, 0] > 0.5).sum()


def test_z_rotation_of_flat_scene_rotates_image():
    frame = _pattern()
    depth = torch.ones(64, 64)
    theta = 4.0
    out = warp_3d(frame, depth, (0, 0, 0), (0, 0, theta), fov=90.0, sampling_mode="bilinear")
    c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))

    def rotated(sign):
        mat = torch.tensor([[[c, -sign * s, 0.0], [sign * s, c, 0.0]]])
        grid = F.affine_grid(mat, [1, 3, 64, 64], align_corners=False)
        return F.grid_sample(frame, grid, mode="bilinear", padding_mode="border", align_corners=False)

    inner = (slice(None), slice(None), slice(12, 52), slice(12, 52))
    err_ccw = (out - rotated(1))[inner].abs().mean().item()
    err_cw = (out - rotated(-1))[inner].abs().mean().item()
    err_none = (out - frame)[inner].abs().mean().item()
    # Positive rotation_3d_z turns the content counter-clockwise on screen (sampling at R(+θ)·p
    # in the y-down grid); DD's grid is a rotation to first order in θ.
    assert err_ccw < 0.01
    assert err_ccw < 0.2 * min(err_cw, err_none)


def test_near_and_far_do_not_change_the_warp():
    frame = _pattern()
    depth = 1.0 + torch.rand(64, 64, generator=torch.Generator().manual_seed(0))
    a = warp_3d(frame, depth, (3.0, -2.0, 10.0), (1.0, 2.0, 3.0), fov=40.0, near=200.0, far=10000.0)
    b = warp_3d(frame, depth, (3.0, -2.0, 10.0), (1.0, 2.0, 3.0), fov=40.0, near=1.0, far=50.0)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("spherical", [False, True])
def test_vr_eyes_mirror_each_other_on_a_flat_scene(spherical):
    frame = _pattern(48, 64)
    depth = torch.full((48, 64), 2.0)
    left, right = vr_eye_views(frame, depth, eye_angle=2.0, ipd=5.0, spherical=spherical)
    assert left.shape == right.shape == frame.shape
    assert 0.0 <= left.min() and left.max() <= 1.0
    # Mirroring the scene swaps the eyes: left(frame) == flip(right(flip(frame))).
    flipped_right = vr_eye_views(frame.flip(-1), depth, eye_angle=2.0, ipd=5.0, spherical=spherical)[1]
    assert torch.allclose(left, flipped_right.flip(-1), atol=1e-5)
    assert (left - right).abs().mean() > 1e-3


def test_flat_scene_eye_shift_is_symmetric_without_toe_in():
    # With eye_angle 0 the eyes only translate: equal and opposite horizontal shifts.
    frame = torch.zeros(1, 3, 32, 64)
    frame[..., 30:34] = 1.0                          # a vertical bar at the centre
    left, right = vr_eye_views(frame, torch.ones(32, 64), eye_angle=0.0, ipd=40.0, fov=90.0,
                               sampling_mode="bilinear", spherical=False)
    cols = torch.arange(64, dtype=torch.float32)

    def centroid(img):
        weight = img[0, 0].sum(0)
        return (weight * cols).sum().item() / weight.sum().item()

    c0, cl, cr = centroid(frame), centroid(left), centroid(right)
    assert cl - c0 == pytest.approx(-(cr - c0), abs=1e-3)
    assert cl - c0 == pytest.approx(40 / 2 / 200 * 64 / 2, abs=1e-3)   # left eye: content moves right 3.2 px


def test_depth_shape_must_match():
    with pytest.raises(ValueError):
        warp_3d(_pattern(32, 32), torch.ones(16, 16))
