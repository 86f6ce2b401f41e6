"""DD's clip_denoised: guided-diffusion's sampler takes ε from x̂₀ clamped to [-1, 1]; checked
against guided-diffusion's own p_mean_variance on the same ε, with and without the option."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.diffusion.guidance import GuidedDenoiser
from engine.diffusion.schedule import make_schedule


class ConstantUNet(nn.Module):
    """A UNet stand-in: ε = 3·x (so x̂₀ leaves [-1, 1] at high noise), plus a variance channel."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([3 * x, torch.zeros_like(x)], dim=1)


def test_the_sampler_eps_comes_from_the_clamped_x0_as_guided_diffusion_computes_it() -> None:
    from guided_diffusion.gaussian_diffusion import GaussianDiffusion

    schedule = make_schedule(25)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    i = 20  # a noisy index: x̂₀ of ε = 3x is far outside [-1, 1]
    plain = GuidedDenoiser(ConstantUNet(), schedule, None)(x, i).eps
    clipped = GuidedDenoiser(ConstantUNet(), schedule, None, clip_denoised=True)(x, i).eps
    pred = schedule.pred_xstart(x, clipped, i)
    assert pred.abs().max() <= 1 + 1e-9 and schedule.pred_xstart(x, plain, i).abs().max() > 1
    assert torch.allclose(pred, schedule.pred_xstart(x, plain, i).clamp(-1, 1), atol=1e-9)

    betas = 1 - schedule.alphas_cumprod / schedule.alphas_cumprod_prev
    reference = GaussianDiffusion(betas=np.asarray(betas), model_mean_type=_enum("EPSILON"),
                                  model_var_type=_enum("FIXED_SMALL"), loss_type=_enum("MSE"))
    t = torch.tensor([i])
    out = reference.p_mean_variance(lambda xt, tt: 3 * xt, x, t, clip_denoised=True)
    eps = reference._predict_eps_from_xstart(x, t, out["pred_xstart"])
    assert torch.allclose(eps, clipped.double(), atol=1e-6)


def _enum(name: str):
    from guided_diffusion import gaussian_diffusion as gd
    for enum in (gd.ModelMeanType, gd.ModelVarType, gd.LossType):
        if name in enum.__members__:
            return enum[name]
    raise KeyError(name)
