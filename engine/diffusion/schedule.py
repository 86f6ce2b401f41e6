"""The respaced DDPM noise schedule DD samples on, as plain per-step numbers.

DD samples with guided-diffusion's "ddimN" respacing on a base schedule of
(1000 // steps) · steps timesteps, so that N divides the base length exactly. We take the betas
and the timestep map from guided-diffusion itself and keep float64 numbers per step; the
sampler multiplies tensors by these Python floats, so nothing is indexed on the device.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoiseSchedule:
    alphas_cumprod: np.ndarray       # ᾱ per respaced index, float64
    alphas_cumprod_prev: np.ndarray  # ᾱ of the next (less noisy) index; 1.0 after the last
    timestep_map: tuple[int, ...]    # respaced index -> base timestep
    base_steps: int

    @property
    def num_steps(self) -> int:
        return len(self.timestep_map)

    def model_time(self, i: int) -> float:
        """The time the UNet and the cut schedules see for index i, on DD's 0–1000 scale."""
        return self.timestep_map[i] * (1000.0 / self.base_steps)

    def t_int(self, i: int) -> int:
        """DD's int(t) + 1 for index i (1..1000): the timestep its cut schedules are read at."""
        return int(self.model_time(i)) + 1

    def ab(self, i: int) -> float:
        return float(self.alphas_cumprod[i])

    def ab_prev(self, i: int) -> float:
        return float(self.alphas_cumprod_prev[i])

    def pred_xstart(self, x, eps, i: int):
        """x̂₀ = (x − √(1−ᾱ)·ε) / √ᾱ."""
        ab = self.ab(i)
        return x * math.sqrt(1 / ab) - eps * math.sqrt(1 / ab - 1)


def base_steps_for(steps: int) -> int:
    """DD's base schedule length: the largest multiple of `steps` not above 1000."""
    return (1000 // steps) * steps if steps < 1000 else steps


def make_schedule(steps: int, noise_schedule: str = "linear") -> NoiseSchedule:
    with warnings.catch_warnings():  # guided-diffusion uses a deprecated torch.cuda.amp decorator
        warnings.simplefilter("ignore", FutureWarning)
        from guided_diffusion.gaussian_diffusion import get_named_beta_schedule
        from guided_diffusion.respace import space_timesteps

    base = base_steps_for(steps)
    betas = get_named_beta_schedule(noise_schedule, base)
    keep = space_timesteps(base, f"ddim{steps}")
    base_ab = np.cumprod(1.0 - betas)
    timestep_map = tuple(sorted(keep))
    ab = base_ab[list(timestep_map)]
    ab_prev = np.append(1.0, ab[:-1])
    return NoiseSchedule(alphas_cumprod=ab, alphas_cumprod_prev=ab_prev,
                         timestep_map=timestep_map, base_steps=base)
