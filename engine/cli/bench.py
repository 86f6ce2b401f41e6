"""`disco bench`: seconds per step and peak memory for given settings, as one JSON object.

The first step is a warm-up (allocator, kernels, caches); the figure reported is the median of
the steps after it. Model load time is measured separately.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine.errors import EngineError, SpecError
from engine.models.devices import PRECISIONS
from engine.spec.options import bounded_int

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

    from engine.diffusion.pipeline import DiscoPipeline
    from engine.models.pool import ModelPool, resolve_device
    from engine.spec.memory import predict_peak
    from engine.spec.overrides import parse_set_options
    from engine.spec.render import RenderSpec

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

    pool = ModelPool(args.models, device, precision=args.precision, compile=args.compile,
                     channels_last=args.channels_last)
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

    pipeline = DiscoPipeline(pool)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        pipeline(spec, out_dir=Path(out), callback=record)
        render_seconds = time.perf_counter() - started

    # The profiler times the CPU side; on a GPU that is launch time, not the work: CPU only.
    phases = _phase_seconds(lambda: pipeline(spec.replace(steps=2), out_dir=Path(tempfile.mkdtemp()))) \
        if device.type == "cpu" else None
    per_pass = pipeline.cut_batches_per_pass(spec)
    predicted = predict_peak(spec, precision=pool.precision, cut_batches_per_pass=per_pass)
    timed = step_seconds[1:]
    return {
        "seconds_per_step": round(statistics.median(timed), 4),
        "projected_250_steps_seconds": round(250 * statistics.median(timed), 1),
        "seconds_per_step_min": round(min(timed), 4),
        "warmup_step_seconds": round(step_seconds[0], 4),
        "model_load_seconds": round(load_seconds, 3),
        "render_seconds": round(render_seconds, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        if device.type == "cuda" else None,
        "peak_cuda_reserved_mb": round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
        if device.type == "cuda" else None,
        # The memory model's figures are for the real architectures, not the tiny test set.
        "predicted_peak_mb": round(predicted.total_gb * 1e9 / 2**20, 1) if args.models != "test-tiny" else None,
        "predicted_allocated_mb": round(predicted.allocated_gb * 1e9 / 2**20, 1)
        if args.models != "test-tiny" else None,
        "cut_batches_per_pass": per_pass or spec.cutn_batches,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "phase_seconds_per_step": phases,
        "model_set": args.models,
        "precision": pool.precision,
        "compile": args.compile,
        "channels_last": args.channels_last,
        "settings": {k: data[k] for k in ("width", "height", "steps", "cutn_batches", "clip_models",
                                          "use_secondary_model", "sampling_mode")},
    }


def add_bench_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("bench", help="measure seconds per step and peak memory (JSON)",
                            description="Benchmark the engine; prints one JSON object.")
    p.add_argument("--models", default="random-full", choices=("random-full", "test-tiny"),
                   help="random-full: the real architectures with random weights (default); "
                        "test-tiny: the tiny test models")
    p.add_argument("--width", type=bounded_int(8, 8192), default=256, help="pixels (default 256; DD's is 1280)")
    p.add_argument("--height", type=bounded_int(8, 8192), default=256, help="pixels (default 256; DD's is 768)")
    p.add_argument("--steps", type=bounded_int(1, 10_000), default=10,
                   help="steps to render, the first a warm-up (default 10); the report projects 250")
    p.add_argument("--cutn-batches", type=bounded_int(1, 64), default=1, help="DD's cutn_batches (default 1; DD's is 4)")
    p.add_argument("--clip-models", nargs="+", default=["ViT-B-32::openai"], metavar="ARCH::TAG",
                   help="CLIP models (default ViT-B-32::openai; DD's default adds ViT-B-16::openai RN50::openai)")
    p.add_argument("--secondary", action=argparse.BooleanOptionalAction, default=True,
                   help="use the secondary model (default on)")
    p.add_argument("--sampling-mode", default="ddim", choices=("ddim", "plms"), help="DD's sampler (default ddim)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto = DD's choice: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet, secondary and CLIP towers")
    p.add_argument("--channels-last", action="store_true", help="channels-last weights for the conv models")
    p.add_argument("--threads", type=bounded_int(1, 1024), help="torch CPU threads (default: torch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting, repeatable")
    p.add_argument("--animation", action="store_true",
                   help="instead: per-frame animation cost outside diffusion (warps, depth, encode)")
    p.add_argument("--repeats", type=bounded_int(1, 1000), default=3, help="--animation: timed repeats per part")
    p.add_argument("--encode-frames", type=bounded_int(1, 10_000), default=24, help="--animation: frames in the test clip")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.cli.bench_animation import run_animation_bench

    try:
        report = run_animation_bench(args) if args.animation else run_bench(args)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.cli.bench ...`: the same command without the `disco` entry (the GPU
    check runs it where the bot's packages are not installed)."""
    parser = argparse.ArgumentParser(prog="python -m engine.cli.bench")
    add_bench_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
