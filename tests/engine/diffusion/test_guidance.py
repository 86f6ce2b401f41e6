"""The guidance gradient: all cutn_batches in one CLIP pass equals DD's loop, cuts shared across
CLIP models of one input size, and no host-device sync inside a step (on CUDA)."""
from __future__ import annotations

import pytest
import torch

from engine.diffusion import guidance as guidance_module
from engine.diffusion.cutouts import draw_cuts, render_cuts
from engine.diffusion.embeddings import prompt_embeddings
from engine.diffusion.guidance import ClipGuide, Guidance, GuidanceScales
from engine.diffusion.losses import prompt_loss
from engine.diffusion.rng import Generators
from engine.diffusion.schedule import make_schedule
from engine.spec.render import CutStep
from tests.support.engine import fast_spec, engine_test_device, tiny_pool

CLIPS = ["ViT-B-32::openai", "ViT-B-16::openai"]  # both tiny, same input size: one cut group
PLAN = CutStep(2, 3, 1.0, 0.2)


def make_guidance(seed: int, cutn_batches: int, skip_augs: bool, per_pass: int | None) -> Guidance:
    pool, device = tiny_pool(), engine_test_device()
    spec = fast_spec(clip_models=CLIPS, cutn_batches=cutn_batches)
    gens = Generators.seeded(seed, device)
    guides = [ClipGuide(c, *prompt_embeddings(pool, c, spec, gens, device)) for c in map(pool.clip, CLIPS)]
    scales = GuidanceScales(5000.0, 0.0, 0.0, 0.0, 0.0, cutn_batches, clamp_grad=False, clamp_max=0.05,
                            skip_augs=skip_augs)
    return Guidance(make_schedule(20), guides, lambda t: PLAN, scales, gens, secondary=pool.secondary(),
                    cut_batches_per_pass=per_pass)


def x_t(seed: int = 3) -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed)).to(engine_test_device())


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("skip_augs", [True, False])
def test_one_pass_equals_dd_loop(skip_augs):
    batched, _ = make_guidance(1, 4, skip_augs, None).gradient(x_t(), 12)
    looped, _ = make_guidance(1, 4, skip_augs, 1).gradient(x_t(), 12)
    pairs, _ = make_guidance(1, 4, skip_augs, 2).gradient(x_t(), 12)
    assert batched.abs().max() > 0
    assert relative_error(batched, looped) < 1e-5
    assert relative_error(pairs, looped) < 1e-5


def test_gradient_equals_dd_reference_written_out():
    """DD's cond_fn for the CLIP term, written out: per model, per cut batch, the loss × scale
    backpropagated to x_in and divided by cutn_batches, summed; then through x_in to x."""
    guidance = make_guidance(5, 3, True, None)
    got, _ = guidance.gradient(x_t(), 12)

    reference = make_guidance(5, 3, True, None)
    x = x_t().requires_grad_()
    ab = reference.schedule.ab(12)
    from engine.models.secondary import ddpm_to_v_time
    pred = reference.secondary(x, ddpm_to_v_time(x.new_full((1,), ab, dtype=torch.float64)).float()).pred
    fac = (1 - ab) ** 0.5
    x_in = pred * fac + x * (1 - fac)
    draws = [draw_cuts(64, 64, 64, PLAN, reference.gens, True) for _ in range(3)]
    total = torch.zeros((), device=x.device)
    for guide in reference.clips:
        for batch in draws:
            cuts = render_cuts(x_in.add(1).div(2), 64, [batch])
            loss = prompt_loss(guide.clip.encode(cuts), guide.targets, guide.weights, PLAN.total).sum()
            total = total + loss * 5000.0 / 3
    expected = -torch.autograd.grad(total, x)[0]
    assert relative_error(got, expected) < 1e-5


def test_cuts_are_rendered_once_per_step_for_clip_models_of_one_size(monkeypatch):
    calls = []
    monkeypatch.setattr(guidance_module, "render_cuts",
                        lambda image, size, batches: calls.append(len(batches)) or render_cuts(image, size, batches))
    make_guidance(2, 4, False, None).gradient(x_t(), 12)
    assert calls == [4]  # two CLIP models, four cut batches: one rendering
    calls.clear()
    make_guidance(2, 4, False, 1).gradient(x_t(), 12)
    assert calls == [1, 1, 1, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("secondary", [True, False])
def test_a_step_never_syncs_with_the_host(secondary, tmp_path):
    """A whole guided step (UNet, secondary or UNet x̂₀, cuts, CLIP, losses, DDIM update) under
    `set_sync_debug_mode("error")`: any `.item()`, blocking copy or synchronising op raises."""
    from engine.diffusion.pipeline import DiscoPipeline
    pool = tiny_pool()
    spec = fast_spec(clip_models=CLIPS, cutn_batches=2, use_secondary_model=secondary, steps=4, tv_scale=10)
    DiscoPipeline(pool)(spec.replace(steps=2), out_dir=tmp_path / "warm")  # loads models, caches
    seen = []

    def strict_between_callbacks(context, info):
        torch.cuda.set_sync_debug_mode(0)  # the callback and the PNG at the end may sync
        seen.append(info.step)
        if info.step < info.total:
            torch.cuda.set_sync_debug_mode("error")  # every op of the next step is checked

    try:
        DiscoPipeline(pool)(spec, out_dir=tmp_path / "run", callback=strict_between_callbacks)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(seen) == 4
