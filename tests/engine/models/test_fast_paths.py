"""The opt-in speed paths equal the eager path: channels-last weights, and torch.compile of the
UNet, the secondary model and the CLIP image towers. Stated tolerance: the guided ε of one step
within 1e-4 of the eager one, relative to its largest value (fp32 on the CPU; kernels differ
only in summation order)."""
from __future__ import annotations

import pytest
import torch

from engine.diffusion.embeddings import prompt_embeddings
from engine.diffusion.guidance import ClipGuide, Guidance, GuidanceScales, GuidedDenoiser
from engine.diffusion.rng import Generators
from engine.diffusion.schedule import make_schedule
from engine.models.pool import ModelPool
from tests.support.engine import fast_spec, tiny_pool

TOLERANCE = 1e-4


def guided_eps(pool: ModelPool, secondary: bool) -> torch.Tensor:
    spec = fast_spec(cutn_batches=2, use_secondary_model=secondary)
    gens = Generators.seeded(4, "cpu")
    clip = pool.clip("ViT-B-32::openai")
    guides = [ClipGuide(clip, *prompt_embeddings(pool, clip, spec, gens, "cpu"))]
    scales = GuidanceScales(5000.0, 100.0, 50.0, 0.0, 0.0, 2, clamp_grad=True, clamp_max=0.05, skip_augs=False)
    schedule = make_schedule(20)
    guidance = Guidance(schedule, guides, spec.cut_schedule, scales, gens,
                        secondary=pool.secondary() if secondary else None)
    unet, _ = pool.unet(spec.diffusion_model, spec.use_checkpoint)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    return GuidedDenoiser(unet, schedule, guidance)(x, 12).eps


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("secondary", [True, False])
def test_channels_last_equals_eager(secondary):
    fast = ModelPool("test-tiny", torch.device("cpu"), channels_last=True)
    assert relative_error(guided_eps(fast, secondary), guided_eps(tiny_pool(), secondary)) < TOLERANCE


@pytest.mark.slow
def test_compiled_equals_eager():
    """Slow here: inductor compiles the tiny UNet, secondary and CLIP for the CPU (minutes)."""
    fast = ModelPool("test-tiny", torch.device("cpu"), compile=True, channels_last=True)
    assert relative_error(guided_eps(fast, True), guided_eps(tiny_pool(), True)) < TOLERANCE
