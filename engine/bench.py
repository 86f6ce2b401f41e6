"""`disco bench`: seconds per step and peak memory for given settings, as one JSON object.

The first step is a warm-up (allocator, kernels, caches); the figure reported is the median of
the steps after it. Model load time is measured separately.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from .errors import SpecError

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own chatter about absent GPUs


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _phase_seconds(render_two_steps) -> dict[str, float]:
    """Wall time per labelled phase (engine code marks them with `record_function`), averaged
    over a 2-step render, the first step included. The profiler adds a little overhead."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        render_two_steps()
    totals = {e.key.removeprefix("disco."): e.cpu_time_total / 1e6 / 2
              for e in prof.key_averages() if e.key.startswith("disco.")}
    return {k: round(v, 3) for k, v in sorted(totals.items())}


def run_bench(args) -> dict:
    import torch

    from .cli import resolve_device
    from .models import ModelPool
    from .pipeline import DiscoPipeline
    from .spec import RenderSpec, parse_set_options

    if args.steps < 2:
        raise SpecError("--steps: the benchmark needs at least 2 steps (one is a warm-up)", "steps")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = {"text_prompts": "a lighthouse in a storm:2 | yellow:-0.5", "width": args.width,
            "height": args.height, "steps": args.steps, "skip_steps": 0, "n_batches": 1,
            "cutn_batches": args.cutn_batches, "clip_models": args.clip_models,
            "use_secondary_model": args.secondary, "sampling_mode": args.sampling_mode, "seed": 0}
    data.update(parse_set_options(args.set))
    spec = RenderSpec.from_dict(data)

    pool = ModelPool(args.models, device, precision=args.precision)
    started = time.perf_counter()
    pool.unet(spec.diffusion_model, spec.use_checkpoint)
    if spec.use_secondary_model:
        pool.secondary()
    for name in spec.clip_models:
        pool.clip(name)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    load_seconds = time.perf_counter() - started

    step_seconds: list[float] = []

    def record(context, info) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # only here, in the benchmark, to time steps honestly
        step_seconds.append(info.seconds)

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        DiscoPipeline(pool)(spec, out_dir=Path(out), callback=record)
        render_seconds = time.perf_counter() - started

    phases = _phase_seconds(lambda: DiscoPipeline(pool)(spec.replace(steps=2), out_dir=Path(tempfile.mkdtemp())))
    timed = step_seconds[1:]
    return {
        "seconds_per_step": round(statistics.median(timed), 4),
        "seconds_per_step_min": round(min(timed), 4),
        "warmup_step_seconds": round(step_seconds[0], 4),
        "model_load_seconds": round(load_seconds, 3),
        "render_seconds": round(render_seconds, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        if device.type == "cuda" else None,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "phase_seconds_per_step": phases,
        "model_set": args.models,
        "precision": pool.precision,
        "settings": {k: data[k] for k in ("width", "height", "steps", "cutn_batches", "clip_models",
                                          "use_secondary_model", "sampling_mode")},
    }
