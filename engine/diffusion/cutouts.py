"""Cutouts: the crops of the current image that CLIP looks at, as in DD's MakeCutoutsDango.

Every random draw comes from the generators passed in, so a run (and a resumed run) is
reproducible. A cut batch is drawn first (`draw_cuts`: geometry and augmentation parameters on a
CPU generator, per-pixel noise on the device generator) and rendered after (`render_cuts`), so
DD's `cutn_batches` can be rendered one at a time or all at once to the same cuts, and several
CLIP models of one input size can share them. Nothing reads the device back (no host syncs).

Fixes over DD 5.7, kept deliberately: augmentations are drawn independently for every cut (DD
drew one set for the whole batch), and the number of grey inner cuts is ⌈p·n⌉ (DD greyed
⌊p·n⌋+1, so at least one even at p = 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from engine.diffusion.rng import Generators
from engine.spec.render import CutStep

GREY_WEIGHTS = (0.2989, 0.587, 0.114)
NOISE_STD = 0.01


def grey(x: torch.Tensor) -> torch.Tensor:
    """Luma greyscale kept as 3 channels (torchvision's Grayscale(3))."""
    r, g, b = x.unbind(dim=-3)
    luma = r * GREY_WEIGHTS[0] + g * GREY_WEIGHTS[1] + b * GREY_WEIGHTS[2]
    return luma.unsqueeze(-3).expand_as(x)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """DD's cut resize to size×size: ResizeRight's antialiased cubic, which reads zeros beyond the
    image. torch's antialiased bicubic has the same kernel but renormalises it over the taps inside
    the image; a separable edge factor (1 in the interior) puts back the weight that ResizeRight
    gives to the zeros, so the outer pixels of a cut darken as they do in DD."""
    out = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    edge_y = _edge_factor(x.shape[-2], size, out.device, out.dtype)
    edge_x = _edge_factor(x.shape[-1], size, out.device, out.dtype)
    return out * (edge_y[:, None] * edge_x)


def _cubic(d: float) -> float:
    """Keys' cubic with a = −0.5 (ResizeRight's `cubic`, torch's antialiased bicubic)."""
    d = abs(d)
    if d <= 1:
        return (1.5 * d - 2.5) * d * d + 1
    if d < 2:
        return ((-0.5 * d + 2.5) * d - 4) * d + 2
    return 0.0


@lru_cache(maxsize=8192)
def edge_factors(n_in: int, n_out: int) -> tuple[float, ...]:
    """Per output pixel along one axis: the kernel weight on taps inside the image over the weight
    on all taps. Output pixel o samples the input at p = (o + ½)/s − ½ (s = n_out/n_in); when
    shrinking the kernel is stretched by 1/s (antialiasing)."""
    scale = n_out / n_in
    stretch = min(scale, 1.0)
    half = 2 / stretch
    factors = []
    for o in range(n_out):
        p = o / scale + (n_in - 1) / 2 - (n_out - 1) / (2 * scale)
        taps = range(math.floor(p - half), math.ceil(p + half) + 1)
        weights = [_cubic(stretch * (p - j)) for j in taps]
        inside = sum(w for j, w in zip(taps, weights) if 0 <= j < n_in)
        factors.append(inside / sum(weights))
    return tuple(factors)


_EDGE_CACHE: dict[tuple, torch.Tensor] = {}


def _edge_factor(n_in: int, n_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`edge_factors` as a tensor on the device, copied there once (non-blocking: no host sync)."""
    key = (n_in, n_out, device, dtype)
    if key not in _EDGE_CACHE:
        host = torch.tensor(edge_factors(n_in, n_out), dtype=dtype)
        _EDGE_CACHE[key] = host.to(device, non_blocking=True)
    return _EDGE_CACHE[key]


def _uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (high - low) + low


@dataclass
class AugmentDraws:
    """DD's still-image augmentations, drawn per cut: hflip p=.5, noise, affine (±10°, ±5 %
    shift), noise, grey p=.1, noise, colour jitter ±.1 and hue ±.1. The per-cut parameters are
    one CPU tensor (one copy to the device); the pixel noise is drawn on the device."""

    params: torch.Tensor    # [n, 18]: flip, angle, shift x/y, grey, 3 jitter factors, 3×3 hue matrix
    noise: torch.Tensor     # [3, n, 3, S, S]

    @classmethod
    def draw(cls, n: int, cut_size: int, gens: Generators) -> "AugmentDraws":
        flip = (torch.rand(n, generator=gens.cpu) < 0.5).float()
        angle = _uniform(gens.cpu, n, -10.0, 10.0) * (math.pi / 180)
        shift_x = torch.round(_uniform(gens.cpu, n, -0.05 * cut_size, 0.05 * cut_size))
        shift_y = torch.round(_uniform(gens.cpu, n, -0.05 * cut_size, 0.05 * cut_size))
        greyed = (torch.rand(n, generator=gens.cpu) < 0.1).float()
        factors = _uniform(gens.cpu, 3 * n, 0.9, 1.1).view(3, n).T
        hue = hue_matrices(_uniform(gens.cpu, n, -0.1, 0.1)).view(n, 9)
        params = torch.cat([torch.stack([flip, angle, shift_x, shift_y, greyed], 1), factors, hue], 1)
        noise = torch.randn((3, n, 3, cut_size, cut_size), generator=gens.device, device=gens.device.device)
        return cls(params, noise)


@dataclass
class CutDraws:
    """Every random choice of one cut batch (DD's MakeCutoutsDango call), drawn before any pixel
    is touched, so batches can be rendered one at a time or all together with the same result."""

    plan: CutStep
    inner: list[tuple[int, int, int]]   # (size, x, y) of each inner cut
    augs: AugmentDraws | None           # None with skip_augs

    @property
    def n_grey(self) -> int:
        return math.ceil(self.plan.icgray_p * self.plan.innercut - 1e-9)


def draw_cuts(side_y: int, side_x: int, cut_size: int, plan: CutStep, gens: Generators,
              skip_augs: bool = False) -> CutDraws:
    """The geometry (CPU generator) and augmentations of one cut batch of an image of that size."""
    max_size = min(side_x, side_y)
    min_size = min(side_x, side_y, cut_size)
    inner = []
    if plan.innercut > 0:
        sizes = (torch.rand(plan.innercut, generator=gens.cpu) ** plan.ic_pow
                 * (max_size - min_size) + min_size).long().tolist()
        u = torch.rand(plan.innercut, 2, generator=gens.cpu).tolist()
        inner = [(size, int(ux * (side_x - size + 1)), int(uy * (side_y - size + 1)))
                 for size, (ux, uy) in zip(sizes, u)]
    augs = None if skip_augs else AugmentDraws.draw(plan.total, cut_size, gens)
    return CutDraws(plan, inner, augs)


def render_cuts(image: torch.Tensor, cut_size: int, batches: list[CutDraws]) -> torch.Tensor:
    """The cuts of several drawn batches of `image` ([1, 3, H, W] in [0, 1]), concatenated in
    batch order -> [Σ plan.total, 3, S, S]. The overview is resized once for all of them."""
    overview_count = max(b.plan.overview for b in batches)
    square = _overview_square(image, cut_size) if overview_count else None
    cuts: list[torch.Tensor] = []
    for batch in batches:
        if batch.plan.overview:
            cuts += _overview_cuts(square, batch.plan.overview)
        for i, (size, x, y) in enumerate(batch.inner):
            cut = image[:, :, y:y + size, x:x + size]
            cuts.append(resize(grey(cut) if i < batch.n_grey else cut, cut_size))
    out = torch.cat(cuts)
    if all(b.augs is None for b in batches):
        return out
    if any(b.augs is None for b in batches):
        raise ValueError("render_cuts: batches mix skip_augs")
    params = torch.cat([b.augs.params for b in batches])
    noise = torch.cat([b.augs.noise for b in batches], dim=1)
    return augment(out, params.to(out.device, out.dtype, non_blocking=True), noise.to(out.device))


def make_cutouts(image: torch.Tensor, cut_size: int, plan: CutStep, gens: Generators,
                 skip_augs: bool = False) -> torch.Tensor:
    """Overview and inner cuts of `image` ([1, 3, H, W] in [0, 1]) -> [plan.total, 3, S, S]."""
    side_y, side_x = image.shape[-2:]
    return render_cuts(image, cut_size, [draw_cuts(side_y, side_x, cut_size, plan, gens, skip_augs)])


def _overview_square(image: torch.Tensor, cut_size: int) -> torch.Tensor:
    """The whole image padded (black) to a square and resized to the cut size."""
    side_y, side_x = image.shape[-2:]
    pad_x = (side_y - min(side_x, side_y)) // 2
    pad_y = (side_x - min(side_x, side_y)) // 2
    # DD pads the short side by half the difference on each side before resizing.
    return resize(F.pad(image, (pad_x, pad_x, pad_y, pad_y)), cut_size)


def _overview_cuts(square: torch.Tensor, count: int) -> list[torch.Tensor]:
    """Plain, grey, flipped, grey+flipped; >4 = plain copies."""
    if count > 4:
        return [square] * count
    variants = [square, grey(square), square.flip(-1), grey(square.flip(-1))]
    return variants[:count]


def augment(cuts: torch.Tensor, params: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Applies drawn `AugmentDraws` (params on the cuts' device) in DD's order."""
    n = cuts.shape[0]
    p = params[:, :, None, None, None]  # [n, 18, 1, 1, 1]: per-cut values broadcast over pixels
    cuts = torch.lerp(cuts, cuts.flip(-1), p[:, 0])
    cuts = cuts + noise[0] * NOISE_STD
    cuts = _affine(cuts, params[:, 1], params[:, 2], params[:, 3])
    cuts = cuts + noise[1] * NOISE_STD
    cuts = torch.lerp(cuts, grey(cuts), p[:, 4])
    cuts = cuts + noise[2] * NOISE_STD
    return color_jitter(cuts, p[:, 5], p[:, 6], p[:, 7], params[:, 8:].view(n, 3, 3))


def random_affine(x: torch.Tensor, gens: Generators, degrees: float, translate: float) -> torch.Tensor:
    """Rotation about the centre (±degrees) and a whole-pixel shift (±translate of the side) per cut."""
    n, _, h, w = x.shape
    angle = _uniform(gens.cpu, n, -degrees, degrees) * (math.pi / 180)
    shift_x = torch.round(_uniform(gens.cpu, n, -translate * w, translate * w))
    shift_y = torch.round(_uniform(gens.cpu, n, -translate * h, translate * h))
    return _affine(x, angle.to(x.device), shift_x.to(x.device), shift_y.to(x.device))


def _affine(x: torch.Tensor, angle: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor) -> torch.Tensor:
    """Rotate by `angle` radians about the centre, then shift by whole pixels; bilinear, zeros
    outside (torchvision's affine with the same parameters, batched with per-cut values).
    The parameters are on x's device."""
    n, _, h, w = x.shape
    cos, sin = angle.cos(), angle.sin()
    # affine_grid maps output coordinates to input ones in [-1, 1]: the inverse transform.
    theta = torch.stack([
        torch.stack([cos, sin * h / w, -(cos * shift_x + sin * shift_y) * 2 / w], 1),
        torch.stack([-sin * w / h, cos, -(-sin * shift_x + cos * shift_y) * 2 / h], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def color_jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
                 saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Per-cut brightness, contrast and saturation factors ([n, 1, 1, 1]) and hue rotation
    matrices ([n, 3, 3]), clamped to [0, 1] after each like torchvision's ColorJitter."""
    x = (x * brightness).clamp(0, 1)
    mean = grey(x).mean(dim=(-3, -2, -1), keepdim=True)
    x = (contrast * x + (1 - contrast) * mean).clamp(0, 1)
    x = (saturation * x + (1 - saturation) * grey(x)).clamp(0, 1)
    return torch.einsum("nij,njhw->nihw", hue, x).clamp(0, 1)


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           dtype=torch.float64)


def hue_matrices(shift: torch.Tensor) -> torch.Tensor:
    """[n, 3, 3] RGB matrices that shift the hue by `shift` turns, as a rotation of the chroma
    plane in YIQ space. Linear, batched and differentiable (torchvision's HSV kernel is neither
    batched per factor nor safe under autograd). Computed on the CPU with the other draws."""
    angle = shift.double() * (2 * math.pi)
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.zeros(shift.shape[0], 3, 3, dtype=torch.float64)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    return (torch.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ).float()


def rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Hue shift by `shift` turns (a CPU tensor, one per image)."""
    return torch.einsum("nij,njhw->nihw", hue_matrices(shift).to(x.device, x.dtype), x)


def image_prompt_cutouts(image: torch.Tensor, cut_size: int, cutn: int, gens: Generators) -> torch.Tensor:
    """DD's legacy MakeCutouts, used once per image prompt: the image padded by a quarter of its
    height; the last quarter of the cuts are the whole padded image, the rest squares of about
    0.8 of it; flips, small affine and perspective changes, some grey, a little noise."""
    pad = image.shape[-2] // 4
    padded = F.pad(image, (pad, pad, pad, pad))
    side_y, side_x = padded.shape[-2:]
    max_size = min(side_x, side_y)
    n_whole = cutn // 4
    cuts = []
    for i in range(cutn):
        if i >= cutn - n_whole:
            cuts.append(resize(padded, cut_size))
            continue
        frac = float(torch.randn((), generator=gens.cpu) * 0.3 + 0.8)
        size = int(max_size * min(1.0, max(cut_size / max_size, frac)))
        u = torch.rand(2, generator=gens.cpu)
        off_x = int(u[0] * (side_x - size + 1))
        off_y = int(u[1] * (side_y - size + 1))
        cuts.append(resize(padded[:, :, off_y:off_y + size, off_x:off_x + size], cut_size))
    batch = torch.cat(cuts)
    flip = torch.rand(cutn, generator=gens.cpu) < 0.5
    batch = torch.where(flip.to(batch.device)[:, None, None, None], batch.flip(-1), batch)
    batch = random_affine(batch, gens, degrees=15.0, translate=0.1)
    batch = torch.stack([_random_perspective(c, gens, 0.4) if torch.rand((), generator=gens.cpu) < 0.7 else c
                         for c in batch])
    greyed = torch.rand(cutn, generator=gens.cpu) < 0.15
    batch = torch.where(greyed.to(batch.device)[:, None, None, None], grey(batch), batch)
    noise = torch.randn(batch.shape, generator=gens.device, device=gens.device.device)
    return batch + noise.to(batch.device) * NOISE_STD


def _random_perspective(cut: torch.Tensor, gens: Generators, distortion: float) -> torch.Tensor:
    h, w = cut.shape[-2:]
    half_h, half_w = int(distortion * h / 2), int(distortion * w / 2)
    jitter = torch.rand(8, generator=gens.cpu)
    dx = (jitter[:4] * (half_w + 1)).long().tolist()
    dy = (jitter[4:] * (half_h + 1)).long().tolist()
    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    end = [[dx[0], dy[0]], [w - 1 - dx[1], dy[1]], [w - 1 - dx[2], h - 1 - dy[2]], [dx[3], h - 1 - dy[3]]]
    return TF.perspective(cut, start, end, interpolation=TF.InterpolationMode.BILINEAR)
