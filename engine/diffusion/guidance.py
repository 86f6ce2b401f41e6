"""DD's cond_fn: the CLIP-guidance gradient, and the denoiser that applies it to the UNet's ε.

Per step (research/engine.md §1.5): estimate x̂₀ with the secondary model or the UNet itself,
mix x_in = x̂₀·√(1−ᾱ) + x·(1−√(1−ᾱ)), take cut batches of x_in through every CLIP model against
the weighted prompt embeddings, add tv / range / saturation / init losses, zero the gradient on
NaN, backpropagate once to x, and cap its RMS. The result shifts ε (DD's condition_score).

Speed without changing the math: when x̂₀ comes from the UNet, the UNet runs once per step with
grad enabled and its ε also drives the sampler (DD ran it twice: once without grad for the
sampler, once with grad for the guidance, on the same inputs). All cutn_batches of a CLIP model
go through it in one pass when memory allows (the gradient is the same sum), and CLIP models of
one input size share the cuts. Nothing here reads a tensor back to the host.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.profiler import record_function

from engine.diffusion.cutouts import CutDraws, draw_cuts, render_cuts
from engine.diffusion.losses import clamp_grad_rms, prompt_loss, range_loss, sat_loss, tv_loss, zero_if_nan
from engine.diffusion.rng import Generators
from engine.diffusion.sampling import Denoised
from engine.diffusion.schedule import NoiseSchedule
from engine.models.pool import ClipModel
from engine.models.secondary import ddpm_to_v_time
from engine.spec.render import CutStep


@dataclass
class ClipGuide:
    """One CLIP model with its prompt embeddings, computed once per image."""

    clip: ClipModel
    targets: torch.Tensor   # [n, d] text, image-prompt-cut and fuzzy embeddings
    weights: torch.Tensor   # [n], divided by |Σw| as DD does


@dataclass(frozen=True)
class GuidanceScales:
    clip_guidance_scale: float
    tv_scale: float
    range_scale: float
    sat_scale: float
    init_scale: float
    cutn_batches: int
    clamp_grad: bool
    clamp_max: float
    skip_augs: bool


class Guidance:
    """The gradient DD's cond_fn returns, for respaced index i."""

    def __init__(self, schedule: NoiseSchedule, clips: list[ClipGuide], cuts_at: Callable[[int], CutStep],
                 scales: GuidanceScales, gens: Generators, secondary: nn.Module | None = None,
                 init: torch.Tensor | None = None, lpips: nn.Module | None = None,
                 cut_batches_per_pass: int | None = None):
        self.schedule, self.clips, self.scales, self.gens = schedule, clips, scales, gens
        # None: all of DD's cutn_batches through CLIP in one pass; 1: DD's loop (less memory).
        self.cut_batches_per_pass = cut_batches_per_pass
        self.cuts_at = cuts_at  # the spec's cut settings by DD's t_int (RenderSpec.cut_schedule)
        self.secondary, self.init, self.lpips = secondary, init, lpips

    @property
    def active(self) -> bool:
        s = self.scales
        uses_init = self.init is not None and self.lpips is not None and s.init_scale != 0
        return bool((s.clip_guidance_scale and self.clips) or s.tv_scale or s.range_scale
                    or s.sat_scale or uses_init)

    def cut_plan(self, i: int) -> CutStep:
        return self.cuts_at(self.schedule.t_int(i))

    def gradient(self, x: torch.Tensor, i: int,
                 pred_from_x: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """−∂loss/∂x, NaN-guarded and RMS-capped. `pred_from_x` is used when there is no
        secondary model (it runs the UNet with grad)."""
        s = self.scales
        ab = self.schedule.ab(i)
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            if self.secondary is not None:
                v_time = ddpm_to_v_time(x.new_full((x.shape[0],), ab, dtype=torch.float64)).float()
                with record_function("disco.secondary"):
                    pred = self.secondary(x, v_time).pred
            else:
                pred = pred_from_x(x)
            fac = math.sqrt(1 - ab)
            x_in = pred * fac + x * (1 - fac)
            # CLIP backward passes stop at x_in; one VJP then carries the sum back to x.
            x_in_leaf = x_in.detach().requires_grad_()
            x_in_grad, losses = self._x_in_gradient(x_in_leaf, i)
            x_in_grad, losses["nan"] = zero_if_nan(x_in_grad)
            with record_function("disco.x_in_backward"):
                grad = -torch.autograd.grad(x_in, x, x_in_grad)[0]
        if s.clamp_grad:
            grad = clamp_grad_rms(grad, s.clamp_max)
        return grad.detach(), losses

    def _x_in_gradient(self, x_in: torch.Tensor, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.scales
        x_in_grad = torch.zeros_like(x_in)
        clip_total = x_in.new_zeros(())
        plan = self.cut_plan(i)
        if s.clip_guidance_scale and self.clips and plan.total:
            for cut_size, guides in _by_cut_size(self.clips).items():
                # DD's cutn_batches, drawn up front: rendering them in one pass or one at a time
                # gives the same cuts, and every CLIP model of this input size sees them.
                draws = [draw_cuts(*x_in.shape[-2:], cut_size, plan, self.gens, s.skip_augs)
                         for _ in range(s.cutn_batches)]
                per_pass = self.cut_batches_per_pass or s.cutn_batches
                for start in range(0, s.cutn_batches, per_pass):
                    grad, loss = self._clip_pass(x_in, cut_size, guides, draws[start:start + per_pass])
                    x_in_grad += grad
                    clip_total = clip_total + loss
        # DD applies range_loss to x̂₀, upstream of x_in, so its gradient w.r.t. x_in is zero
        # and range_scale does nothing there; like discoart we apply it to x_in.
        losses = {"clip": clip_total, "tv": tv_loss(x_in).sum(), "range": range_loss(x_in).sum(),
                  "sat": sat_loss(x_in)}
        terms = [losses[name] * scale for name, scale in
                 (("tv", s.tv_scale), ("range", s.range_scale), ("sat", s.sat_scale)) if scale]
        if self.init is not None and self.lpips is not None and s.init_scale:
            losses["init"] = self.lpips(x_in, self.init).sum()
            terms.append(losses["init"] * s.init_scale)
        if terms:
            x_in_grad += torch.autograd.grad(sum(terms), x_in)[0]
        return x_in_grad, {k: v.detach() for k, v in losses.items()}

    def _clip_pass(self, x_in: torch.Tensor, cut_size: int, guides: list[ClipGuide],
                   batches: list[CutDraws]) -> tuple[torch.Tensor, torch.Tensor]:
        """The gradient w.r.t. x_in (and the loss) of some of DD's cut batches through every
        CLIP model of one input size: Σ over models and batches of loss × scale / cutn_batches."""
        s = self.scales
        image = x_in.add(1).div(2)  # rebuilt per pass: each backward frees its graph
        with record_function("disco.cutouts"):
            cuts = render_cuts(image, cut_size, batches)
        # Each CLIP backward stops at the cuts; one backward then carries their sum on.
        cuts_leaf = cuts.detach().requires_grad_()
        cut_grad = torch.zeros_like(cuts)
        total = x_in.new_zeros(())
        for guide in guides:
            with record_function("disco.clip_forward"):
                # Σ over the batches of DD's per-batch loss (a mean over its cuts).
                loss = prompt_loss(guide.clip.encode(cuts_leaf), guide.targets, guide.weights,
                                   cuts.shape[0]).sum() * len(batches)
            with record_function("disco.clip_backward"):
                cut_grad += torch.autograd.grad(loss * (s.clip_guidance_scale / s.cutn_batches), cuts_leaf)[0]
            total = total + loss.detach() / s.cutn_batches
        with record_function("disco.cutouts_backward"):
            return torch.autograd.grad(cuts, x_in, cut_grad)[0], total


def _by_cut_size(clips: list[ClipGuide]) -> dict[int, list[ClipGuide]]:
    groups: dict[int, list[ClipGuide]] = {}
    for guide in clips:
        groups.setdefault(guide.clip.cut_size, []).append(guide)
    return groups


class GuidedDenoiser:
    """The UNet's ε, shifted by the guidance gradient: ε' = ε − √(1−ᾱ)·grad.

    `clip_denoised` (DD's option, passed to guided-diffusion's sampler): the sampler's ε is the
    one of x̂₀ clamped to [-1, 1] before the shift; guidance still sees the unclamped x̂₀, as in
    DD, whose cond_fn asks for clip_denoised=False."""

    def __init__(self, unet: nn.Module, schedule: NoiseSchedule, guidance: Guidance | None,
                 autocast: torch.dtype | None = None, clip_denoised: bool = False):
        self.unet, self.schedule, self.guidance, self.autocast = unet, schedule, guidance, autocast
        self.clip_denoised = clip_denoised

    def sampler_eps(self, x: torch.Tensor, eps: torch.Tensor, i: int) -> torch.Tensor:
        """ε as guided-diffusion's p_mean_variance hands it to the sampler: from the clamped
        x̂₀ when clip_denoised, else unchanged."""
        if not self.clip_denoised:
            return eps
        ab = self.schedule.ab(i)
        pred = self.schedule.pred_xstart(x, eps, i).clamp(-1, 1)
        return (x / math.sqrt(ab) - pred) / math.sqrt(1 / ab - 1)

    def unet_eps(self, x: torch.Tensor, i: int) -> torch.Tensor:
        t = torch.full((x.shape[0],), self.schedule.model_time(i), device=x.device)
        with record_function("disco.unet"), torch.autocast(
                x.device.type, dtype=self.autocast or torch.bfloat16, enabled=self.autocast is not None):
            return self.unet(x, t)[:, :3].float()

    def __call__(self, x: torch.Tensor, i: int) -> Denoised:
        guidance = self.guidance
        if guidance is None or not guidance.active:
            with torch.no_grad():
                return Denoised(eps=self.sampler_eps(x, self.unet_eps(x, i), i))
        if guidance.secondary is not None:
            with torch.no_grad():
                eps = self.unet_eps(x, i)
            grad, losses = guidance.gradient(x, i)
        else:
            eps_holder: list[torch.Tensor] = []

            def pred_from_x(x_req: torch.Tensor) -> torch.Tensor:
                eps_holder.append(self.unet_eps(x_req, i))
                return self.schedule.pred_xstart(x_req, eps_holder[0], i)

            grad, losses = guidance.gradient(x, i, pred_from_x)
            eps = eps_holder[0].detach()
        eps = self.sampler_eps(x, eps, i)
        return Denoised(eps=eps - math.sqrt(1 - self.schedule.ab(i)) * grad, losses=losses)
