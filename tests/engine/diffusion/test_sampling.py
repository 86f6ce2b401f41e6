"""Our sampler against guided-diffusion's own DDIM and PLMS steps (the math DD runs)."""
import pytest
import torch
from guided_diffusion.script_util import create_gaussian_diffusion

from engine.diffusion.guidance import GuidedDenoiser
from engine.diffusion.rng import Generators
from engine.diffusion.sampling import Denoised, ddim_step, plms_step
from engine.diffusion.schedule import base_steps_for, make_schedule
from engine.models.pool import TINY_UNET_CONFIG, build_unet

STEPS = 25


@pytest.fixture(scope="module")
def unet():
    return build_unet(TINY_UNET_CONFIG, use_fp16=False, use_checkpoint=False, seed=3).eval()


@pytest.fixture(scope="module")
def reference():
    return create_gaussian_diffusion(steps=base_steps_for(STEPS), learn_sigma=True, noise_schedule="linear",
                                     rescale_timesteps=True, timestep_respacing=f"ddim{STEPS}")


def fixed_grad(x, *_):
    return torch.sin(x * 3.0) * 0.1  # any smooth function of x stands in for the CLIP gradient


class FixedGuidance:
    """A denoiser shifting ε by a known gradient, as condition_score does."""

    def __init__(self, unet, schedule):
        self.inner, self.schedule = GuidedDenoiser(unet, schedule, None), schedule

    def __call__(self, x, i):
        with torch.no_grad():
            eps = self.inner.unet_eps(x, i)
        return Denoised(eps - (1 - self.schedule.ab(i)) ** 0.5 * fixed_grad(x))


def test_random_unet_is_not_zero(unet):
    out = unet(torch.randn(1, 3, 64, 64), torch.tensor([500.0]))
    assert out.abs().mean() > 1e-3  # guided-diffusion zero-initialises outputs; we must not


@pytest.mark.parametrize("i", [STEPS - 1, 12, 0])
@pytest.mark.parametrize("guided", [False, True])
def test_ddim_step_matches_guided_diffusion(unet, reference, i, guided):
    schedule = make_schedule(STEPS)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(i))
    denoise = FixedGuidance(unet, schedule) if guided else GuidedDenoiser(unet, schedule, None)
    ours, _ = ddim_step(schedule, x, i, denoise(x, i).eps, eta=0.0, gens=Generators.seeded(0, "cpu"))
    with torch.no_grad():
        theirs = reference.ddim_sample(unet, x, torch.tensor([i]), clip_denoised=False, eta=0.0, model_kwargs={},
                                       cond_fn=fixed_grad if guided else None)["sample"]
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def test_plms_steps_match_guided_diffusion(unet, reference):
    schedule = make_schedule(STEPS)
    denoise = FixedGuidance(unet, schedule)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    ours, history, theirs, old_out = x, [], x, None
    for i in (STEPS - 1, STEPS - 2, STEPS - 3):
        ours, _, history = plms_step(schedule, ours, i, denoise(ours, i).eps, history, denoise)
        with torch.no_grad():
            old_out = reference.plms_sample(unet, theirs, torch.tensor([i]), clip_denoised=False,
                                            cond_fn=fixed_grad, old_out=old_out, model_kwargs={})
        theirs = old_out["sample"]
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4), i


def test_schedule_matches_guided_diffusion(reference):
    schedule = make_schedule(STEPS)
    assert list(schedule.timestep_map) == reference.timestep_map
    assert torch.allclose(torch.tensor(schedule.alphas_cumprod), torch.tensor(reference.alphas_cumprod))
    assert schedule.model_time(STEPS - 1) == reference.timestep_map[-1] * 1000 / reference.original_num_steps


def test_ddim_eta_adds_seeded_noise(unet):
    schedule = make_schedule(STEPS)
    x = torch.randn(1, 3, 64, 64)
    eps = GuidedDenoiser(unet, schedule, None)(x, 10).eps
    a, _ = ddim_step(schedule, x, 10, eps, 0.8, Generators.seeded(1, "cpu"))
    b, _ = ddim_step(schedule, x, 10, eps, 0.8, Generators.seeded(1, "cpu"))
    c, _ = ddim_step(schedule, x, 10, eps, 0.0, Generators.seeded(1, "cpu"))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    last_a, _ = ddim_step(schedule, x, 0, eps, 0.8, Generators.seeded(1, "cpu"))
    last_c, _ = ddim_step(schedule, x, 0, eps, 0.0, Generators.seeded(1, "cpu"))
    assert torch.equal(last_a, last_c)  # no noise on the final step
