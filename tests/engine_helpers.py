"""Shared pieces of the engine tests: one resident test-tiny pool and small, fast specs."""
from __future__ import annotations

from functools import lru_cache

import torch

from engine.cutouts import CutPlan, Generators, make_cutouts
from engine.losses import spherical_dist_loss
from engine.models import ModelPool
from engine.prompting import text_embedding
from engine.spec import RenderSpec

FAST = dict(text_prompts="a lighthouse in a storm", width=64, height=64, steps=12, skip_steps=0,
            n_batches=1, cutn_batches=1, clip_models=["ViT-B-32::openai"], seed=11)


@lru_cache(maxsize=1)
def tiny_pool() -> ModelPool:
    return ModelPool("test-tiny", torch.device("cpu"))


def fast_spec(**changes) -> RenderSpec:
    return RenderSpec.from_dict({**FAST, **changes})


def clip_loss(image: torch.Tensor, text: str, clip_name: str = "ViT-B-32::openai") -> float:
    """Spherical loss of an image ([1, 3, H, W] in [-1, 1]) to a prompt, through one
    un-augmented overview cut of the same tiny CLIP the guidance used."""
    pool = tiny_pool()
    clip = pool.clip(clip_name)
    with torch.no_grad():
        cut = make_cutouts(image.add(1).div(2), clip.cut_size, CutPlan(1, 0, 1.0, 0.0),
                           Generators.seeded(0, "cpu"), skip_augs=True)
        return float(spherical_dist_loss(clip.encode(cut), text_embedding(pool, clip, text)).mean())
