"""Our sampling loop: DDIM (with eta) and PLMS, guided, with one callback shape.

Modelled on k-diffusion's small sampler functions. The loop owns no model: it calls
`denoise(x, i)`, which returns the *guided* noise prediction for respaced index i (the UNet's ε
shifted by the guidance gradient, DD's `condition_score`). Everything needed to continue a run —
x_t, the next index, PLMS's ε history and the random generators' states — is a `SamplerState`,
so a run can be checkpointed after any step and resumed to the same final image.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from engine.diffusion.rng import Generators
from engine.diffusion.schedule import NoiseSchedule
from engine.errors import Cancelled


@dataclass
class Denoised:
    eps: torch.Tensor                 # guided ε
    losses: dict[str, torch.Tensor] = field(default_factory=dict)


class Denoiser(Protocol):
    def __call__(self, x: torch.Tensor, i: int) -> Denoised: ...


@dataclass
class SamplerState:
    x: torch.Tensor
    next_index: int                   # respaced index of the next step; -1 once finished
    eps_history: list[torch.Tensor]   # PLMS only
    rng: dict[str, torch.Tensor]

    def to_payload(self) -> dict:
        """Tensors, ints and lists only, so `torch.load(weights_only=True)` can read it back."""
        return {"x": self.x.detach().cpu(), "next_index": self.next_index,
                "eps_history": [e.detach().cpu() for e in self.eps_history], "rng": self.rng}

    @classmethod
    def from_payload(cls, payload: dict, device: torch.device | str) -> "SamplerState":
        return cls(x=payload["x"].to(device), next_index=int(payload["next_index"]),
                   eps_history=[e.to(device) for e in payload["eps_history"]], rng=payload["rng"])


@dataclass
class StepInfo:
    """What the callback sees after every step."""

    step: int                         # steps finished in this image, counting skipped ones
    total: int                        # steps of the whole image (DD's `steps`)
    index: int                        # respaced index just sampled
    x: torch.Tensor                   # x after the step
    pred_xstart: torch.Tensor         # the guided x̂₀ of the step (the preview image)
    losses: dict[str, torch.Tensor]
    seconds: float                    # wall time of the step
    snapshot: Callable[[], SamplerState]


Callback = Callable[[StepInfo], None]


def initial_state(schedule: NoiseSchedule, shape: tuple[int, ...], skip_steps: int,
                  init: torch.Tensor | None, gens: Generators, device: torch.device | str) -> SamplerState:
    """Pure noise, or `init` noised to the first sampled index (a grey init when skipping
    steps without one, as guided-diffusion does)."""
    noise = torch.randn(shape, generator=gens.device, device=gens.device.device).to(device)
    first = schedule.num_steps - skip_steps - 1
    if init is None and skip_steps > 0:
        init = torch.zeros(shape, device=device)
    x = noise
    if init is not None:
        ab = schedule.ab(first)
        x = init.to(device) * math.sqrt(ab) + noise * math.sqrt(1 - ab)
    return SamplerState(x=x, next_index=first, eps_history=[], rng=gens.get_state())


def ddim_step(schedule: NoiseSchedule, x: torch.Tensor, i: int, eps: torch.Tensor, eta: float,
              gens: Generators) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM update from index i with guided ε; returns (x_prev, x̂₀)."""
    ab, ab_prev = schedule.ab(i), schedule.ab_prev(i)
    pred = schedule.pred_xstart(x, eps, i)
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(1 - ab / ab_prev)
    x_prev = pred * math.sqrt(ab_prev) + eps * math.sqrt(max(1 - ab_prev - sigma ** 2, 0.0))
    if i > 0:  # no noise on the last step
        noise = torch.randn(x.shape, generator=gens.device, device=gens.device.device)
        x_prev = x_prev + sigma * noise.to(x.device)
    return x_prev, pred


def plms_step(schedule: NoiseSchedule, x: torch.Tensor, i: int, eps: torch.Tensor,
              history: list[torch.Tensor], denoise: Denoiser, order: int = 2
              ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """One pseudo linear multistep update (order 2, as DD), pseudo improved Euler on the first
    step; returns (x_prev, x̂₀, new history)."""
    ab_prev = schedule.ab_prev(i)
    if not history and i > 0:
        pred = schedule.pred_xstart(x, eps, i)
        x_euler = pred * math.sqrt(ab_prev) + eps * math.sqrt(1 - ab_prev)
        eps_prime = (eps + denoise(x_euler, i - 1).eps) / 2
    else:
        coeffs = {1: (1,), 2: (3 / 2, -1 / 2), 3: (23 / 12, -16 / 12, 5 / 12),
                  4: (55 / 24, -59 / 24, 37 / 24, -9 / 24)}[min(order, len(history) + 1)]
        recent = [eps] + history[::-1]
        eps_prime = sum(c * e for c, e in zip(coeffs, recent))
    history = (history + [eps])[-(order - 1):] if order > 1 else []
    if i == 0:  # the last step returns the guided x̂₀ of this step's own ε, as guided-diffusion does
        pred = schedule.pred_xstart(x, eps, i)
        return pred, pred, history
    pred = schedule.pred_xstart(x, eps_prime, i)
    return pred * math.sqrt(ab_prev) + eps_prime * math.sqrt(1 - ab_prev), pred, history


def sample(denoise: Denoiser, schedule: NoiseSchedule, state: SamplerState, gens: Generators, *,
           mode: str = "ddim", eta: float = 0.8, callback: Callback | None = None,
           should_cancel: Callable[[], bool] | None = None,
           transform: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> torch.Tensor:
    """Runs from `state.next_index` down to index 0 and returns the final image x₀.

    `transform(x, i)` runs before each step (DD's symmetry); the cancel check runs before each
    step too, so a cancelled run stops within one step.
    """
    gens.set_state(state.rng)
    x, history = state.x, list(state.eps_history)
    for i in range(state.next_index, -1, -1):
        if should_cancel is not None and should_cancel():
            raise Cancelled("the render was cancelled")
        started = time.perf_counter()
        if transform is not None:
            x = transform(x, i)
        out = denoise(x, i)
        if mode == "plms":
            x, pred, history = plms_step(schedule, x, i, out.eps, history, denoise)
        else:
            x, pred = ddim_step(schedule, x, i, out.eps, eta, gens)
        if callback is not None:
            # Call `snapshot` inside the callback: it reads the generators' current state.
            def snapshot(i=i, sx=x, sh=history) -> SamplerState:
                return SamplerState(x=sx, next_index=i - 1, eps_history=list(sh), rng=gens.get_state())

            callback(StepInfo(step=schedule.num_steps - i, total=schedule.num_steps, index=i, x=x,
                              pred_xstart=pred, losses=out.losses,
                              seconds=time.perf_counter() - started, snapshot=snapshot))
    return x
