"""Perlin-noise init images (DD's perlin_init): coarse and fine fractal noise, averaged.

DD sums 12 octaves on a 1×1 base lattice with weights 0.5·1.5^−i (coarse) and 8 octaves on a
4×4 base (fine), autocontrasts each, averages them and maps the result to [-1, 1]. 'color' uses
colour noise for both, 'gray' grey noise for both, 'mixed' colour coarse and grey fine. This is
our own gradient-noise implementation drawing from the render's generator.
"""
from __future__ import annotations

import math

import torch


def _fade(t: torch.Tensor) -> torch.Tensor:
    return t * t * t * (t * (t * 6 - 15) + 10)


def gradient_noise(height: int, width: int, cells_y: int, cells_x: int, gen: torch.Generator,
                   channels: int = 1) -> torch.Tensor:
    """One octave of 2-D Perlin noise: [channels, height, width], roughly in [-1, 1]."""
    angles = torch.rand(channels, cells_y + 1, cells_x + 1, generator=gen) * (2 * math.pi)
    grads = torch.stack([angles.cos(), angles.sin()], dim=-1)
    ys = torch.linspace(0, cells_y, height + 1)[:-1]
    xs = torch.linspace(0, cells_x, width + 1)[:-1]
    y0, x0 = ys.floor().long(), xs.floor().long()
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]

    def corner(dy: int, dx: int) -> torch.Tensor:
        g = grads[:, y0 + dy][:, :, x0 + dx]  # [C, H, W, 2]
        return g[..., 0] * (fx - dx) + g[..., 1] * (fy - dy)

    u, v = _fade(fx), _fade(fy)
    top = torch.lerp(corner(0, 0), corner(0, 1), u)
    bottom = torch.lerp(corner(1, 0), corner(1, 1), u)
    return torch.lerp(top, bottom, v) * math.sqrt(2)


def fractal_noise(height: int, width: int, base_cells: int, octaves: int, grey: bool,
                  gen: torch.Generator) -> torch.Tensor:
    """Octaves doubling in frequency with weights 0.5·1.5^−i, autocontrasted to [0, 1]: [3, H, W]."""
    channels = 1 if grey else 3
    total = torch.zeros(channels, height, width)
    for i in range(octaves):
        cells = base_cells * 2 ** i
        if cells > max(height, width):  # finer than a pixel adds nothing but aliasing
            break
        total += gradient_noise(height, width, cells, cells, gen, channels) * (0.5 * 1.5 ** -i)
    flat = total.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    total = (total - low[:, None, None]) / (high - low).clamp(min=1e-8)[:, None, None]
    return total.expand(3, height, width).clone()


def perlin_init(height: int, width: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    """DD's perlin init image in [-1, 1]: [1, 3, H, W]."""
    coarse_grey = mode == "gray"
    fine_grey = mode in ("gray", "mixed")
    coarse = fractal_noise(height, width, 1, 12, coarse_grey, gen)
    fine = fractal_noise(height, width, 4, 8, fine_grey, gen)
    return ((coarse + fine) / 2 * 2 - 1)[None]
