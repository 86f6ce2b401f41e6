"""Cutouts: the crops of the current image that CLIP looks at, as in DD's MakeCutoutsDango.

Every random draw comes from the generators passed in, so a run (and a resumed run) is
reproducible. Cut geometry and augmentation parameters are drawn on a CPU generator (no host
syncs on a GPU); per-pixel noise is drawn on the device generator.

Fixes over DD 5.7, kept deliberately: augmentations are drawn independently for every cut (DD
drew one set for the whole batch), and the number of grey inner cuts is ⌈p·n⌉ (DD greyed
⌊p·n⌋+1, so at least one even at p = 0).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from engine.diffusion.rng import Generators
from engine.spec.render import CutStep

GREY_WEIGHTS = (0.2989, 0.587, 0.114)




def grey(x: torch.Tensor) -> torch.Tensor:
    """Luma greyscale kept as 3 channels (torchvision's Grayscale(3))."""
    w = x.new_tensor(GREY_WEIGHTS)[:, None, None]
    return (x * w).sum(dim=-3, keepdim=True).expand_as(x)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bicubic resize to size×size (DD uses ResizeRight's antialiased cubic)."""
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)


def _uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (high - low) + low


def make_cutouts(image: torch.Tensor, cut_size: int, plan: CutStep, gens: Generators,
                 skip_augs: bool = False) -> torch.Tensor:
    """Overview and inner cuts of `image` ([1, 3, H, W] in [0, 1]) -> [plan.total, 3, S, S]."""
    side_y, side_x = image.shape[-2:]
    max_size = min(side_x, side_y)
    min_size = min(side_x, side_y, cut_size)
    cuts: list[torch.Tensor] = []
    if plan.overview > 0:
        cuts += _overview_cuts(image, cut_size, plan.overview)
    if plan.innercut > 0:
        sizes = (torch.rand(plan.innercut, generator=gens.cpu) ** plan.ic_pow
                 * (max_size - min_size) + min_size).long().tolist()
        u = torch.rand(plan.innercut, 2, generator=gens.cpu)
        n_grey = math.ceil(plan.icgray_p * plan.innercut - 1e-9)
        for i, size in enumerate(sizes):
            off_x = int(u[i, 0] * (side_x - size + 1))
            off_y = int(u[i, 1] * (side_y - size + 1))
            cut = image[:, :, off_y:off_y + size, off_x:off_x + size]
            if i < n_grey:
                cut = grey(cut)
            cuts.append(resize(cut, cut_size))
    batch = torch.cat(cuts)
    return batch if skip_augs else augment(batch, gens)


def _overview_cuts(image: torch.Tensor, cut_size: int, count: int) -> list[torch.Tensor]:
    """The whole image padded (black) to a square: plain, grey, flipped, grey+flipped; >4 = plain copies."""
    side_y, side_x = image.shape[-2:]
    pad_x = (side_y - min(side_x, side_y)) // 2
    pad_y = (side_x - min(side_x, side_y)) // 2
    # DD pads the short side by half the difference on each side before resizing.
    square = resize(F.pad(image, (pad_x, pad_x, pad_y, pad_y)), cut_size)
    if count > 4:
        return [square] * count
    variants = [square, grey(square), square.flip(-1), grey(square.flip(-1))]
    return variants[:count]


def augment(cuts: torch.Tensor, gens: Generators) -> torch.Tensor:
    """DD's still-image augmentations, drawn independently per cut:
    hflip p=.5, noise, affine (±10°, ±5 % shift), noise, grey p=.1, noise, colour jitter ±.1."""
    n = cuts.shape[0]
    flip = torch.rand(n, generator=gens.cpu) < 0.5
    cuts = torch.where(flip.to(cuts.device)[:, None, None, None], cuts.flip(-1), cuts)
    cuts = _add_noise(cuts, gens)
    cuts = random_affine(cuts, gens, degrees=10.0, translate=0.05)
    cuts = _add_noise(cuts, gens)
    greyed = torch.rand(n, generator=gens.cpu) < 0.1
    cuts = torch.where(greyed.to(cuts.device)[:, None, None, None], grey(cuts), cuts)
    cuts = _add_noise(cuts, gens)
    return color_jitter(cuts, gens, strength=0.1, hue=0.1)


def _add_noise(x: torch.Tensor, gens: Generators, std: float = 0.01) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=gens.device, device=gens.device.device, dtype=x.dtype)
    return x + noise.to(x.device) * std


def random_affine(x: torch.Tensor, gens: Generators, degrees: float, translate: float) -> torch.Tensor:
    """Rotation about the centre (±degrees) and a whole-pixel shift (±translate of the side) per cut."""
    n, _, h, w = x.shape
    angle = _uniform(gens.cpu, n, -degrees, degrees) * (math.pi / 180)
    shift_x = torch.round(_uniform(gens.cpu, n, -translate * w, translate * w))
    shift_y = torch.round(_uniform(gens.cpu, n, -translate * h, translate * h))
    return _affine(x, angle, shift_x, shift_y)


def _affine(x: torch.Tensor, angle: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor) -> torch.Tensor:
    """Rotate by `angle` radians about the centre, then shift by whole pixels; bilinear, zeros
    outside (torchvision's affine with the same parameters, batched with per-cut values)."""
    n, _, h, w = x.shape
    cos, sin = angle.cos(), angle.sin()
    # affine_grid maps output coordinates to input ones in [-1, 1]: the inverse transform.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = -sin * w / h, cos
    theta[:, 0, 2] = -(cos * shift_x + sin * shift_y) * 2 / w
    theta[:, 1, 2] = -(-sin * shift_x + cos * shift_y) * 2 / h
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def color_jitter(x: torch.Tensor, gens: Generators, strength: float, hue: float) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [1−s, 1+s] and a hue shift in [−hue, hue],
    per cut, clamped to [0, 1] after each like torchvision's ColorJitter."""
    n = x.shape[0]
    factors = _uniform(gens.cpu, 3 * n, 1 - strength, 1 + strength).view(3, n, 1, 1, 1).to(x.device, x.dtype)
    hues = _uniform(gens.cpu, n, -hue, hue).to(x.device, x.dtype)
    x = (x * factors[0]).clamp(0, 1)
    mean = grey(x).mean(dim=(-3, -2, -1), keepdim=True)
    x = (factors[1] * x + (1 - factors[1]) * mean).clamp(0, 1)
    x = (factors[2] * x + (1 - factors[2]) * grey(x)).clamp(0, 1)
    return rotate_hue(x, hues).clamp(0, 1)


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Hue shift by `shift` turns per image, as a rotation of the chroma plane in YIQ space.
    Linear, batched and differentiable (torchvision's HSV kernel is neither batched per
    factor nor safe under autograd)."""
    angle = shift * (2 * math.pi)
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    to_yiq = _RGB_TO_YIQ.to(x.device, x.dtype)
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # [n, 3, 3]
    return torch.einsum("nij,njhw->nihw", matrix, x)


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
    return _add_noise(batch, gens)


def _random_perspective(cut: torch.Tensor, gens: Generators, distortion: float) -> torch.Tensor:
    h, w = cut.shape[-2:]
    half_h, half_w = int(distortion * h / 2), int(distortion * w / 2)
    jitter = torch.rand(8, generator=gens.cpu)
    dx = (jitter[:4] * (half_w + 1)).long().tolist()
    dy = (jitter[4:] * (half_h + 1)).long().tolist()
    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    end = [[dx[0], dy[0]], [w - 1 - dx[1], dy[1]], [w - 1 - dx[2], h - 1 - dy[2]], [dx[3], h - 1 - dy[3]]]
    return TF.perspective(cut, start, end, interpolation=TF.InterpolationMode.BILINEAR)
