"""The secondary model: a small v-diffusion U-Net that predicts the denoised image cheaply.

Disco Diffusion uses it (instead of a second, grad-enabled pass through the 550M-parameter
UNet) to estimate x̂₀ inside the guidance function. This is our own implementation of the
architecture; its parameter names and shapes match `secondary_model_imagenet_2.pth`
(`shared/data/secondary_model_keys.json`), so the published weights load with strict=True.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

CHANNELS = (64, 128, 128, 256, 256, 512)
TIME_FEATURES = 16


class SecondaryOutput(NamedTuple):
    v: torch.Tensor
    pred: torch.Tensor  # the denoised image estimate, the only output DD uses
    eps: torch.Tensor


class FourierFeatures(nn.Module):
    """Embeds the scalar time t as [cos(2πtW), sin(2πtW)] with a learned frequency matrix W."""

    def __init__(self, in_features: int, out_features: int, std: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features) * std)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * t @ self.weight.T
        return torch.cat([angles.cos(), angles.sin()], dim=-1)


class SkipBlock(nn.Module):
    """Runs `main` and concatenates its output with its input along channels (a U-Net level)."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.main(x), x], dim=1)


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True))


def _unet_level(depth: int) -> SkipBlock:
    """Level `depth` (1..5) of the U-Net: pool, two convs, the next level, two convs, upsample."""
    c_outer, c = CHANNELS[depth - 1], CHANNELS[depth]
    down = [nn.AvgPool2d(2), conv_block(c_outer, c), conv_block(c, c)]
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    if depth == len(CHANNELS) - 1:  # the bottleneck has a third conv instead of a deeper level
        return SkipBlock(*down, conv_block(c, c), conv_block(c, c_outer), up)
    inner = _unet_level(depth + 1)
    c_inner_out = CHANNELS[depth] * 2  # the inner level's output concatenated with its input
    return SkipBlock(*down, inner, conv_block(c_inner_out, c), conv_block(c, c_outer), up)


class SecondaryDiffusionImageNet2(nn.Module):
    """v-objective U-Net on 3 image channels + 16 time channels; sides must be multiples of 32."""

    def __init__(self):
        super().__init__()
        c0 = CHANNELS[0]
        self.timestep_embed = FourierFeatures(1, TIME_FEATURES)
        self.net = nn.Sequential(
            conv_block(3 + TIME_FEATURES, c0),
            conv_block(c0, c0),
            _unet_level(1),
            conv_block(c0 * 2, c0),
            nn.Conv2d(c0, 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> SecondaryOutput:
        """`t` is v-diffusion time in [0, 1] per batch item (0 = clean, 1 = pure noise)."""
        embed = self.timestep_embed(t[:, None].to(x.dtype))
        planes = embed[:, :, None, None].expand(x.shape[0], embed.shape[1], x.shape[2], x.shape[3])
        v = self.net(torch.cat([x, planes], dim=1))
        alpha, sigma = _v_alpha_sigma(t, x)
        return SecondaryOutput(v=v, pred=x * alpha - v * sigma, eps=x * sigma + v * alpha)


def _v_alpha_sigma(t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t = t.to(like.dtype)[:, None, None, None]
    return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)


def ddpm_to_v_time(alpha_cumprod: torch.Tensor) -> torch.Tensor:
    """Maps a DDPM noise level ᾱ to v-diffusion time: atan2(√(1−ᾱ), √ᾱ)·2/π."""
    return torch.atan2((1 - alpha_cumprod).sqrt(), alpha_cumprod.sqrt()) * (2 / math.pi)
