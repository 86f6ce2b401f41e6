"""Measures what the memory model (engine/spec/memory.py) needs, on the CPU, and prints JSON.

Activation memory is what autograd keeps for the backward pass, so it is measured exactly and
device-independently by summing the bytes of the tensors saved for backward
(`saved_tensors_hooks`, each storage counted once) during one grad-enabled forward:
- per CLIP model: weight bytes, and saved bytes at 1 and 2 cuts (the model is linear in cuts:
  per-cut bytes = the difference);
- the UNet (with and without gradient checkpointing) and the secondary model: saved bytes at
  two sizes, per pixel.
fp32 here; under fp16 autocast most saved tensors are half that. Paste the figures into
engine/spec/memory_data.json (that file records how they were fitted); on a GPU,
benchmarks/gpu_check.sh compares the model's prediction with the allocator's peak.

    .venv/bin/python benchmarks/memory_fit.py --clip-models ViT-B-32::openai RN50::openai
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from engine.models.pool import ModelPool  # noqa: E402


_SEEN: dict[int, int] = {}


def _keep(t: torch.Tensor) -> torch.Tensor:
    storage = t.untyped_storage()
    _SEEN[storage.data_ptr()] = storage.nbytes()
    return t


def _count_checkpoint_inputs() -> None:
    """guided-diffusion's checkpoint keeps its block inputs as plain attributes (not through
    save_for_backward, which the hooks see): count them too."""
    from guided_diffusion import nn as gd_nn

    original = gd_nn.CheckpointFunction.forward

    def forward(ctx, run_function, length, *args):
        for t in args[:length]:
            _keep(t)
        return original(ctx, run_function, length, *args)

    gd_nn.CheckpointFunction.forward = staticmethod(forward)


def saved_bytes(run) -> int:
    """Bytes of distinct storages autograd keeps while `run()` builds its graph."""
    _SEEN.clear()
    with torch.autograd.graph.saved_tensors_hooks(_keep, lambda t: t):
        run()
    return sum(_SEEN.values())


def param_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def measure_clip(pool: ModelPool, name: str) -> dict:
    clip = pool.clip(name)
    per_n = {}
    for n in (1, 2):
        cuts = torch.rand(n, 3, clip.cut_size, clip.cut_size, requires_grad=True)
        per_n[n] = saved_bytes(lambda: clip.encode(cuts).sum())
    return {"params": sum(p.numel() for p in clip.model.parameters()),
            "visual_params": sum(p.numel() for p in clip.model.visual.parameters()),
            "cut_size": clip.cut_size, "saved_bytes_per_cut_fp32": per_n[2] - per_n[1],
            "saved_bytes_fixed_fp32": 2 * per_n[1] - per_n[2]}


def measure_per_pixel(forward, sizes=(64, 128)) -> float:
    figures = [saved_bytes(lambda s=s: forward(torch.randn(1, 3, s, s, requires_grad=True))) for s in sizes]
    return (figures[1] - figures[0]) / (sizes[1] ** 2 - sizes[0] ** 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-models", nargs="*", default=["ViT-B-32::openai", "ViT-B-16::openai", "RN50::openai"])
    parser.add_argument("--unet", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    torch.set_grad_enabled(True)
    _count_checkpoint_inputs()
    pool = ModelPool("random-full", torch.device("cpu"), precision="fp32")
    report: dict = {"clip": {name: measure_clip(pool, name) for name in args.clip_models}}
    if args.unet:
        secondary = pool.secondary()
        report["secondary"] = {"params": sum(p.numel() for p in secondary.parameters()),
                               "saved_bytes_per_pixel_fp32": measure_per_pixel(
                                   lambda x: secondary(x, torch.full((1,), 0.5)).pred.sum())}
        for checkpoint in (False, True):
            unet, _ = pool.unet("512x512_diffusion_uncond_finetune_008100", checkpoint)
            t = torch.full((1,), 500.0)
            report[f"unet_checkpoint_{checkpoint}".lower()] = {
                "params": sum(p.numel() for p in unet.parameters()),
                "saved_bytes_per_pixel_fp32": measure_per_pixel(lambda x: unet(x, t).sum())}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
