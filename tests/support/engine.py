"""Shared pieces of the engine tests: one resident test-tiny pool and small, fast specs."""
from __future__ import annotations

import os
from functools import lru_cache

import torch

from engine.diffusion.cutouts import make_cutouts
from engine.diffusion.embeddings import text_embedding
from engine.diffusion.losses import spherical_dist_loss
from engine.diffusion.rng import Generators
from engine.models.pool import ModelPool
from engine.spec.render import CutStep, RenderSpec

FAST = dict(text_prompts="a lighthouse in a storm", width=64, height=64, steps=12, skip_steps=0,
            n_batches=1, cutn_batches=1, clip_models=["ViT-B-32::openai"], seed=11)


def engine_test_device() -> torch.device:
    """The engine tests' device: the CPU, or `DISCO_TEST_DEVICE` (e.g. cuda, for the GPU check)."""
    return torch.device(os.environ.get("DISCO_TEST_DEVICE", "cpu"))


@lru_cache(maxsize=1)
def tiny_pool() -> ModelPool:
    return ModelPool("test-tiny", engine_test_device(), precision="fp32")


def fast_spec(**changes) -> RenderSpec:
    return RenderSpec.from_dict({**FAST, **changes})


def clip_loss(image: torch.Tensor, text: str, clip_name: str = "ViT-B-32::openai") -> float:
    """Spherical loss of an image ([1, 3, H, W] in [-1, 1]) to a prompt, through one
    un-augmented overview cut of the same tiny CLIP the guidance used."""
    pool = tiny_pool()
    clip = pool.clip(clip_name)
    with torch.no_grad():
        cut = make_cutouts(image.to(pool.device).add(1).div(2), clip.cut_size, CutStep(1, 0, 1.0, 0.0),
                           Generators.seeded(0, "cpu"), skip_augs=True)
        return float(spherical_dist_loss(clip.encode(cut), text_embedding(pool, clip, text)).mean())


# Animations: few steps, few and small cuts, one CLIP: each frame takes a second or two on a small CPU.
ANIMATION_RENDER = dict(text_prompts="a lighthouse", width=64, height=64, steps=4, cutn_batches=1,
              clip_models=["ViT-B-32::openai"], seed=5, cut_overview="[2]*1000",
              cut_innercut="[2]*1000")
# frames_scale=0 skips LPIPS (its VGG is the slowest part on CPU); init_scale is tested elsewhere.
ANIMATION_FAST = dict(max_frames=4, frames_scale=0, frames_skip_steps="50%", fps=8)
