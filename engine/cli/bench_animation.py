"""`disco bench --animation`: the per-frame cost of an animation outside diffusion.

Times, per frame, on the chosen device: the 2D warp, MiDaS depth of the previous frame, the 3D
camera warp, the two VR eye views, and the mp4 encode (per frame, averaged over a short clip).
Warps run on tensors already on the device — nothing touches the disk — and the encode writes to
a temporary folder, as a real animation's end does. Prints one JSON object.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable


def _timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    fn()  # warm-up: kernels, caches, allocator
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def run_animation_bench(args) -> dict:
    import numpy as np
    import torch

    from engine.animation.camera import vr_eye_views, warp_3d
    from engine.animation.depth import build_depth_model, estimate_depth
    from engine.animation.warp2d import warp_2d
    from engine.media.video import encode_mp4
    from engine.models.pool import resolve_device

    device = resolve_device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    frame = torch.rand(1, 3, args.height, args.width, generator=torch.Generator().manual_seed(0)).to(device)
    depth_kind = "random" if args.models == "random-full" else "tiny"
    started = time.perf_counter()
    depth_model = build_depth_model(depth_kind, device)
    load_seconds = time.perf_counter() - started
    depth = estimate_depth(depth_model, frame)
    repeats = max(1, args.repeats)
    report = {
        "warp_2d": _timed(lambda: warp_2d(frame, 0.5, 1.02, 2.0, -1.0), repeats, sync),
        "depth": _timed(lambda: estimate_depth(depth_model, frame), repeats, sync),
        "warp_3d": _timed(lambda: warp_3d(frame, depth, (1.0, 0.0, 10.0), (0.0, 0.5, 0.0)), repeats, sync),
        "vr_eyes": _timed(lambda: vr_eye_views(frame, depth), repeats, sync),
    }
    frames = [np.random.default_rng(i).integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
              for i in range(args.encode_frames)]
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        encode_mp4(frames, Path(folder) / "bench.mp4", fps=12)
        report["encode_per_frame"] = round((time.perf_counter() - started) / len(frames), 4)
    return {
        "seconds_per_frame": report,
        "outside_diffusion_3d_frame": round(report["depth"] + report["warp_3d"] + report["encode_per_frame"], 4),
        "depth_model": f"MiDaS DPT ({depth_kind} weights)",
        "depth_model_load_seconds": round(load_seconds, 3),
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "settings": {"width": args.width, "height": args.height, "repeats": repeats,
                     "encode_frames": args.encode_frames},
    }
