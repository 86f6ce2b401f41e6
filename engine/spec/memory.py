"""The memory model: a render's peak GPU memory from its settings, before it runs.

peak = (weights + what autograd keeps for the backward passes + the largest transient) × slack
  + a fixed overhead (CUDA context, library workspaces), where
- weights: the UNet (fp16 under DD's GPU precision), the secondary model, every CLIP model
  (fp32, plus the half-precision copies autocast caches while it runs), LPIPS with an init;
- kept: the graph from x_t to x_in, which lives through the whole CLIP phase: the UNet's
  activations per pixel when x̂₀ comes from the UNet (less with gradient checkpointing), else
  the secondary model's;
- transient: one CLIP model's activations for the cuts of one pass (its cutn_batches × the
  busiest position of the cut schedule, or one batch in DD's loop) × a backward factor, plus the
  cut tensors' own graph.

The coefficients are data (`memory_data.json`, with how each was measured). Torch-free: the bot
refuses a job that cannot fit the server's GPU at enqueue (commands/job_size.py), and the engine
picks how many cut batches go through CLIP at once (engine/diffusion/pipeline.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.spec.render import RenderSpec

GB = 1e9


@lru_cache(maxsize=1)
def memory_data() -> dict:
    return json.loads((Path(__file__).with_name("memory_data.json")).read_text(encoding="utf-8"))


def clip_arch(name: str) -> str:
    """'ViT-B-32-quickgelu::laion400m_e32' -> 'ViT-B-32' (the data is per architecture)."""
    return name.partition("::")[0].removesuffix("-quickgelu")


@dataclass(frozen=True)
class MemoryEstimate:
    weights_gb: float
    kept_gb: float
    transient_gb: float
    allocated_gb: float      # weights + kept + transient: what the allocator's peak should show
    total_gb: float          # with slack for fragmentation and the CUDA context: what must fit
    largest_clip: str        # the CLIP model whose pass is the transient peak


def _clip_figures(arch: str) -> dict:
    clips = memory_data()["clip"]
    return clips.get(arch) or clips["unknown"]


def cuts_per_batch(spec: RenderSpec) -> int:
    """The busiest position of the cut schedule: the cuts of one of DD's cut batches."""
    schedules = spec.schedules()
    return max(o + i for o, i in zip(schedules.overview, schedules.innercut))


def predict_peak(spec: RenderSpec, *, precision: str = "fp16", cut_batches_per_pass: int | None = None
                 ) -> MemoryEstimate:
    """Predicted peak of one render of `spec`; `cut_batches_per_pass` None = all at once."""
    data = memory_data()
    half = precision in ("fp16", "bf16")
    act = data["activation_scale_half"] if half else 1.0
    pixels = spec.width * spec.height
    unet = data["unet"].get(spec.diffusion_model) or data["unet"]["default"]
    weights = unet["params"] * (2 if precision == "fp16" else 4)
    if spec.use_secondary_model:
        secondary = data["secondary"]
        weights += secondary["params"] * 4
        kept = secondary["saved_bytes_per_pixel_fp32"] * (1.0 if secondary["runs_fp32"] else act) * pixels
    else:
        key = "checkpoint" if spec.use_checkpoint else "no_checkpoint"
        kept = unet["saved_bytes_per_pixel_fp32"][key] * act * pixels
    if spec.init_image and spec.init_scale:
        weights += data["lpips"]["params"] * 4
        kept += data["lpips"]["saved_bytes_per_pixel_fp32"] * pixels
    per_pass = min(cut_batches_per_pass or spec.cutn_batches, spec.cutn_batches)
    cuts = cuts_per_batch(spec) * per_pass
    transient, largest = 0.0, ""
    for name in spec.clip_models:
        clip = _clip_figures(clip_arch(name))
        weights += clip["params"] * (4 + (2 if half else 0))
        cut_pixels = 3 * clip["cut_size"] ** 2
        need = (clip["saved_bytes_per_cut_fp32"] * act * data["backward_factor"]
                + cut_pixels * 4 * data["cut_tensor_copies"]) * cuts
        if need > transient:
            transient, largest = need, name
    allocated = weights + kept + transient
    total = allocated * data["slack"] + data["fixed_overhead_gb"] * GB
    return MemoryEstimate(weights / GB, kept / GB, transient / GB, allocated / GB, total / GB, largest)


def batches_per_pass(spec: RenderSpec, memory_gb: float, precision: str = "fp16") -> int:
    """The most of DD's cut batches that go through CLIP at once within `memory_gb` (≥ 1: DD's
    loop when even two would not fit)."""
    for per_pass in range(spec.cutn_batches, 1, -1):
        if predict_peak(spec, precision=precision, cut_batches_per_pass=per_pass).total_gb <= memory_gb:
            return per_pass
    return 1


def fits(spec: RenderSpec, memory_gb: float, precision: str = "fp16") -> bool:
    """Whether `spec` fits at all: in DD's loop, the engine's least hungry way to run it."""
    return predict_peak(spec, precision=precision, cut_batches_per_pass=1).total_gb <= memory_gb


def memory_refusal(spec: RenderSpec, memory_gb: float, precision: str = "fp16") -> str | None:
    """None when `spec` fits `memory_gb`; else what it needs and what would fit."""
    need = predict_peak(spec, precision=precision, cut_batches_per_pass=1)
    if need.total_gb <= memory_gb:
        return None
    models = " + ".join(clip_arch(m) for m in spec.clip_models)
    fixes = []
    size = largest_fitting_size(spec, memory_gb, precision)
    if size:
        fixes.append(f"use {size[0]}×{size[1]}")
    if len(spec.clip_models) > 1:
        smaller = spec.replace(clip_models=[m for m in spec.clip_models if m != need.largest_clip])
        if fits(smaller, memory_gb, precision):
            fixes.append(f"drop {clip_arch(need.largest_clip)}")
    if not spec.use_secondary_model and fits(spec.replace(use_secondary_model=True), memory_gb, precision):
        fixes.append("use_secondary_model=true")
    fix = " or ".join(fixes) if fixes else "use a smaller size and fewer CLIP models"
    return (f"{spec.width}×{spec.height} with {models} needs ~{math.ceil(need.total_gb)} GB of GPU memory; "
            f"this server's GPU has {memory_gb:g} GB: {fix}")


def largest_fitting_size(spec: RenderSpec, memory_gb: float, precision: str = "fp16"
                         ) -> tuple[int, int] | None:
    """The largest size of the same shape (sides multiples of 64) that fits, if any."""
    for factor in range(64, 0, -1):
        width = spec.width * factor // 64 // 64 * 64
        height = spec.height * factor // 64 // 64 * 64
        if width < 64 or height < 64 or (width, height) == (spec.width, spec.height):
            continue
        if fits(spec.replace(width=width, height=height), memory_gb, precision):
            return width, height
    return None
