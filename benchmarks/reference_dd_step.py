"""Seconds per step: Disco Diffusion 5.7's structure vs our engine, same models, same machine.

The reference side drives guided-diffusion's own `ddim_sample_loop_progressive` with a cond_fn
built the way DD 5.7 builds it: the sampler runs the UNet without grad, and without the
secondary model cond_fn runs `p_mean_variance` again with grad; cuts are augmented as one batch
with torchvision transforms. Both sides use the same `random-full` models and loss formulas, so
the difference is the structure of a step. Prints one JSON object.

    .venv/bin/python benchmarks/reference_dd_step.py --width 256 --height 256 --steps 6
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from guided_diffusion.script_util import create_gaussian_diffusion  # noqa: E402

from engine.diffusion.cutouts import grey, resize  # noqa: E402
from engine.diffusion.embeddings import text_embedding  # noqa: E402
from engine.diffusion.losses import prompt_loss, range_loss, sat_loss, tv_loss  # noqa: E402
from engine.diffusion.pipeline import DiscoPipeline  # noqa: E402
from engine.diffusion.schedule import base_steps_for  # noqa: E402
from engine.models.pool import ModelPool  # noqa: E402
from engine.models.secondary import ddpm_to_v_time  # noqa: E402
from engine.spec.render import CutStep, RenderSpec  # noqa: E402

DD_AUGS = T.Compose([
    T.RandomHorizontalFlip(p=0.5),
    T.Lambda(lambda x: x + torch.randn_like(x) * 0.01),
    T.RandomAffine(degrees=10, translate=(0.05, 0.05), interpolation=T.InterpolationMode.BILINEAR),
    T.Lambda(lambda x: x + torch.randn_like(x) * 0.01),
    T.RandomGrayscale(p=0.1),
    T.Lambda(lambda x: x + torch.randn_like(x) * 0.01),
    T.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1),
])


def dd_cutouts(image, cut_size, plan: CutStep):
    """DD's MakeCutoutsDango with one augmentation draw for the whole batch (its behaviour)."""
    side_y, side_x = image.shape[-2:]
    max_size, min_size = min(side_x, side_y), min(side_x, side_y, cut_size)
    pad_x, pad_y = (side_y - max_size) // 2, (side_x - max_size) // 2
    square = resize(torch.nn.functional.pad(image, (pad_x, pad_x, pad_y, pad_y)), cut_size)
    cuts = [square, grey(square), square.flip(-1), grey(square.flip(-1))][:plan.overview] \
        if plan.overview <= 4 else [square] * plan.overview
    for i in range(plan.innercut):
        size = int(torch.rand([]) ** plan.ic_pow * (max_size - min_size) + min_size)
        ox, oy = torch.randint(0, side_x - size + 1, ()), torch.randint(0, side_y - size + 1, ())
        cut = image[:, :, oy:oy + size, ox:ox + size]
        cuts.append(resize(grey(cut) if i <= int(plan.icgray_p * plan.innercut) else cut, cut_size))
    return DD_AUGS(torch.cat(cuts))


class UnderAutocast(torch.nn.Module):
    """The UNet as our pipeline runs it for --precision bf16 (autocast, fp32 out)."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype | None):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x, t, **kwargs):
        with torch.autocast(x.device.type, dtype=self.dtype or torch.bfloat16, enabled=self.dtype is not None):
            return self.model(x, t, **kwargs).float()


def reference_seconds(pool: ModelPool, spec: RenderSpec) -> list[float]:
    unet = UnderAutocast(pool.unet(spec.diffusion_model, spec.use_checkpoint)[0], pool.unet_autocast)
    secondary = pool.secondary() if spec.use_secondary_model else None
    clip = pool.clip(spec.clip_models[0])
    target = text_embedding(pool, clip, spec.text_prompts[0].text)
    weights = torch.ones(1)
    diffusion = create_gaussian_diffusion(steps=base_steps_for(spec.steps), learn_sigma=True,
                                          noise_schedule="linear", rescale_timesteps=True,
                                          timestep_respacing=f"ddim{spec.steps}")
    overview, inner, ic_pow, grey_p = spec.schedules()
    cur_t = [diffusion.num_timesteps - 1]

    def cond_fn(x, t, y=None):
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            n = x.shape[0]
            ab = diffusion.alphas_cumprod[cur_t[0]]
            if secondary is not None:
                pred = secondary(x, ddpm_to_v_time(torch.tensor([ab] * n)).float()).pred
            else:
                my_t = torch.ones([n], dtype=torch.long) * cur_t[0]
                pred = diffusion.p_mean_variance(unet, x, my_t, clip_denoised=False)["pred_xstart"]
            fac = math.sqrt(1 - ab)
            x_in = pred * fac + x * (1 - fac)
            x_in_grad = torch.zeros_like(x_in)
            k = 1000 - (int(t[0]) + 1)
            plan = CutStep(overview[k], inner[k], ic_pow[k], grey_p[k])
            for _ in range(spec.cutn_batches):
                cuts = dd_cutouts(x_in.add(1).div(2), clip.cut_size, plan)
                loss = prompt_loss(clip.encode(cuts), target, weights, plan.total).sum()
                x_in_grad += torch.autograd.grad(loss * spec.clip_guidance_scale, x_in)[0] / spec.cutn_batches
            other = tv_loss(x_in).sum() * spec.tv_scale + range_loss(pred).sum() * spec.range_scale \
                + sat_loss(x_in) * spec.sat_scale
            x_in_grad += torch.autograd.grad(other, x_in)[0]
            if torch.isnan(x_in_grad).any():
                return torch.zeros_like(x)
            grad = -torch.autograd.grad(x_in, x, x_in_grad)[0]
            magnitude = grad.square().mean().sqrt()
            return grad * magnitude.clamp(max=spec.clamp_max) / magnitude

    shape = (1, 3, spec.height, spec.width)
    seconds, started = [], time.perf_counter()
    for _ in diffusion.ddim_sample_loop_progressive(unet, shape, clip_denoised=False, cond_fn=cond_fn,
                                                     eta=spec.eta, model_kwargs={}):
        cur_t[0] -= 1
        seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
    return seconds


def ours_seconds(pool: ModelPool, spec: RenderSpec) -> list[float]:
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        DiscoPipeline(pool)(spec, out_dir=Path(out), callback=lambda ctx, info: seconds.append(info.seconds))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--secondary", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--models", default="random-full", choices=("random-full", "test-tiny"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()
    spec = RenderSpec.from_dict(dict(text_prompts="a lighthouse in a storm", width=args.width,
                                     height=args.height, steps=args.steps, skip_steps=0, n_batches=1,
                                     cutn_batches=1, clip_models=["ViT-B-32::openai"], seed=0,
                                     use_secondary_model=args.secondary, use_checkpoint=False))
    pool = ModelPool(args.models, precision=args.precision)
    report = {"settings": {"width": args.width, "height": args.height, "steps": args.steps,
                           "secondary": args.secondary, "clip": "ViT-B-32", "cutn_batches": 1,
                           "model_set": args.models, "precision": args.precision,
                           "threads": torch.get_num_threads()}}
    # Alternate the two so drifting machine load affects both alike; drop each warm-up step.
    for side, run in (("reference_dd", reference_seconds), ("ours", ours_seconds),
                      ("reference_dd_again", reference_seconds), ("ours_again", ours_seconds)):
        torch.manual_seed(0)
        steps = run(pool, spec)[1:]
        report[side] = {"median_seconds_per_step": round(statistics.median(steps), 3),
                        "min_seconds_per_step": round(min(steps), 3)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
