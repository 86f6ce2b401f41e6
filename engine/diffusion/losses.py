"""The loss terms of Disco Diffusion's guidance, as small pure functions.

Images are in [-1, 1] unless noted. Each function returns a per-sample tensor (or a scalar where
DD reduces to one) so callers decide how to weight and sum.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def spherical_dist_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Half the squared angle between embeddings: 2·arcsin(‖x̂ − ŷ‖ / 2)² (broadcasts)."""
    x = F.normalize(x, dim=-1)
    y = F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared forward difference, edges replicated; one value per sample."""
    x = F.pad(x, (0, 1, 0, 1), mode="replicate")
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx.pow(2) + dy.pow(2)).mean(dim=(1, 2, 3))


def range_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean squared excursion outside [-1, 1]; one value per sample."""
    return (x - x.clamp(-1, 1)).pow(2).mean(dim=(1, 2, 3))


def sat_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute excursion outside [-1, 1] over the whole batch (a scalar, as in DD)."""
    return (x - x.clamp(-1, 1)).abs().mean()


def prompt_loss(image_embeds: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                n_cuts: int) -> torch.Tensor:
    """DD's CLIP loss for one cut batch: weighted spherical distance, summed over prompts and
    averaged over cuts; one value per image. `image_embeds` is [n_cuts·batch, d]."""
    dists = spherical_dist_loss(image_embeds[:, None], targets[None])
    dists = dists.view(n_cuts, -1, targets.shape[0])
    return (dists * weights).sum(dim=2).mean(dim=0)


def clamp_grad_rms(grad: torch.Tensor, clamp_max: float) -> torch.Tensor:
    """Scales the whole gradient so its RMS is at most `clamp_max` (a global cap, not per element).

    Stays on the device (no `.item()`), and a zero gradient stays zero instead of becoming NaN.
    """
    rms = grad.pow(2).mean().sqrt()
    return grad * (rms.clamp(max=clamp_max) / rms.clamp(min=torch.finfo(grad.dtype).tiny))


def zero_if_nan(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DD's black-image guard: a gradient with any NaN is replaced by zeros (the step runs
    unguided). Returns (gradient, flag tensor) without a host sync."""
    has_nan = grad.isnan().any()
    return torch.where(has_nan, torch.zeros_like(grad), grad), has_nan
