"""DiscoPipeline: a RenderSpec in, PNGs out. Reads top to bottom like a diffusers pipeline.

    pool = ModelPool("test-tiny")
    results = DiscoPipeline(pool)(spec, out_dir=Path("out"), callback=print_progress)

Each image n of a batch is rendered with seed + n and its own generators, so any image can be
reproduced alone. Cancellation is checked before every step; a checkpoint (sampler state and
random-generator state) can be written from the callback and handed back as `resume`.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from engine import __version__
from engine.diffusion.embeddings import load_image, prompt_embeddings
from engine.diffusion.guidance import ClipGuide, Guidance, GuidanceScales, GuidedDenoiser
from engine.diffusion.images import image_to_tensor, to_pil
from engine.diffusion.perlin import perlin_init
from engine.diffusion.rng import Generators
from engine.diffusion.sampling import Callback, SamplerState, StepInfo, initial_state, sample
from engine.diffusion.schedule import make_schedule
from engine.errors import ModelError
from engine.media.files import save_json, save_new_run_settings, save_png, settings_name
from engine.models.pool import ModelPool
from engine.spec.ddsettings import export_dd_settings
from engine.spec.memory import batches_per_pass
from engine.spec.render import RenderSpec, batch_image_seed


@dataclass
class RenderResult:
    index: int
    seed: int
    path: Path
    seconds: float
    image: torch.Tensor | None = None  # the final x₀ in [-1, 1], when asked for (keep_images)


@dataclass
class Resume:
    """Where to pick a render up: the image index, and that image's sampler state if it was
    checkpointed part way (None starts that image afresh)."""

    index: int
    state: SamplerState | None = None


@dataclass
class RenderContext:
    """Passed to the step callback along with each StepInfo."""

    spec: RenderSpec
    index: int
    seed: int
    out_dir: Path
    run: int
    partial_steps: frozenset[int] = field(default_factory=frozenset)


StepCallback = Callable[[RenderContext, StepInfo], None]


class DiscoPipeline:
    def __init__(self, pool: ModelPool):
        self.pool = pool
        self.device = pool.device

    def __call__(self, spec: RenderSpec, *, out_dir: Path, callback: StepCallback | None = None,
                 should_cancel: Callable[[], bool] | None = None, resume: Resume | None = None,
                 run: int | None = None, init: torch.Tensor | None = None,
                 keep_images: bool = False, batch_cuts: bool = True) -> list[RenderResult]:
        """`init`: an init image already in memory ([1, 3, H, W] in [-1, 1]), used instead of
        reading `spec.init_image` (animations hand over the warped frame this way; the spec's
        init_image then only names it). `keep_images`: also return each final image tensor.
        `batch_cuts`: let several cut batches share a CLIP pass when memory allows (False: DD's
        loop, one batch per pass; the same image either way)."""
        # 1. Read the input images (a bad file fails before any model loads or file is written),
        #    settle the seed; DD's settings file (which takes the run number) comes before sampling.
        init_image = read_input_images(spec, with_init=init is None)
        seed = spec.seed if spec.seed is not None else random.randint(0, 2**32 - 1)
        out_dir.mkdir(parents=True, exist_ok=True)

        # 2. Load (or reuse) the models the spec names.
        unet, _ = self.pool.unet(spec.diffusion_model, spec.use_checkpoint)
        secondary = self.pool.secondary() if spec.use_secondary_model else None
        clips = [self.pool.clip(name) for name in spec.clip_models]
        has_init = init is not None or bool(spec.init_image)
        lpips = self._lpips() if has_init and spec.init_scale else None
        run = self._write_settings(spec, seed, out_dir, run)

        # 3. The noise schedule is shared by every image (the spec parsed its cut schedules once).
        schedule = make_schedule(spec.steps)
        first = resume.index if resume else 0

        results = []
        for index in range(first, spec.n_batches):
            started = time.perf_counter()
            image_seed = batch_image_seed(seed, index)
            gens = Generators.seeded(image_seed, self.device)
            context = RenderContext(spec, index, image_seed, out_dir, run, _partial_steps(spec))

            # 4. Prompt embeddings per CLIP model (text cached; image prompts and fuzz use gens).
            guides = [ClipGuide(c, *prompt_embeddings(self.pool, c, spec, gens, self.device)) for c in clips]

            # 5. The start: an init image (in memory or from its file), Perlin noise, or none.
            shape = (1, 3, spec.height, spec.width)
            start = None
            if init is not None:
                start = init.to(self.device, torch.float32)
            elif init_image is not None:
                start = image_to_tensor(init_image, spec.width, spec.height, self.device)
            elif spec.perlin_init:
                start = perlin_init(spec.height, spec.width, spec.perlin_mode, gens.cpu).to(self.device)

            # 6. Guidance and the guided denoiser.
            scales = GuidanceScales(spec.clip_guidance_scale, spec.tv_scale, spec.range_scale,
                                    spec.sat_scale, spec.init_scale, spec.cutn_batches,
                                    spec.clamp_grad, spec.clamp_max, spec.skip_augs)
            guidance = Guidance(schedule, guides, spec.cut_schedule, scales, gens, secondary=secondary,
                                init=start if has_init else None, lpips=lpips,
                                cut_batches_per_pass=self.cut_batches_per_pass(spec) if batch_cuts else 1)
            denoiser = GuidedDenoiser(unet, schedule, guidance, autocast=self.pool.unet_autocast,
                                      clip_denoised=spec.clip_denoised)

            # 7. Sample from the start, or from the checkpoint being resumed.
            state = initial_state(schedule, shape, spec.skip_steps, start, gens, self.device)
            if resume is not None and index == resume.index and resume.state is not None:
                state = resume.state
            step_cb: Callback | None = (lambda info, ctx=context: callback(ctx, info)) if callback else None
            x = sample(denoiser, schedule, state, gens, mode=spec.sampling_mode, eta=spec.eta,
                       callback=step_cb, should_cancel=should_cancel,
                       transform=symmetry_transform(spec, schedule.num_steps))

            # 8. Save the PNG with everything needed to reproduce this one image.
            path = out_dir / f"{spec.batch_name}({run})_{index}.png"
            save_png(to_pil(x), path, self.png_text(spec, image_seed))
            results.append(RenderResult(index, image_seed, path, time.perf_counter() - started,
                                        x.detach() if keep_images else None))
        return results

    def cut_batches_per_pass(self, spec: RenderSpec) -> int | None:
        """All cut batches in one CLIP pass (None) on the CPU; on a GPU as many as the memory
        model says fit in 90 % of the device's memory."""
        if self.device.type != "cuda":
            return None
        memory_gb = torch.cuda.get_device_properties(self.device).total_memory / 1e9
        return batches_per_pass(spec, 0.9 * memory_gb, self.pool.precision)

    def _lpips(self):
        try:
            return self.pool.lpips()
        except ModelError as exc:
            raise ModelError(f"init_scale needs LPIPS, whose VGG16 backbone weights are missing: {exc} "
                             "— or set init_scale=0 to render from the init image without that loss"
                             ) from None

    def png_text(self, spec: RenderSpec, image_seed: int) -> dict[str, str]:
        alone = spec.replace(seed=image_seed, n_batches=1)
        return {"disco_settings": alone.to_json(), "disco_engine": f"disco-discord {__version__}",
                "disco_model_set": self.pool.model_set,
                "disco_models_sha256": _json(self.pool.sha256),
                "Description": _prompt_text(spec)}

    def _write_settings(self, spec: RenderSpec, seed: int, out_dir: Path, run: int | None) -> int:
        """DD's settings file of the run; without a run number, the next free one is taken."""
        settings = export_dd_settings(spec, seed=seed)
        settings.update(engine=f"disco-discord {__version__}", model_set=self.pool.model_set,
                        models_sha256=dict(self.pool.sha256))
        if run is None:
            return save_new_run_settings(out_dir, spec.batch_name, settings)
        save_json(out_dir / settings_name(spec.batch_name, run), settings)
        return run


def read_input_images(spec: RenderSpec, *, with_init: bool = True):
    """The spec's init image (None without one, or when `with_init` is false), after reading its
    image prompts too: a missing or unusable file is a SpecError before any work starts."""
    for prompt in spec.image_prompts:
        load_image(prompt.text, "image_prompts")
    return load_image(spec.init_image, "init_image") if spec.init_image and with_init else None


def _json(data) -> str:
    import json
    return json.dumps(data, sort_keys=True)


def _prompt_text(spec: RenderSpec) -> str:
    return " | ".join(f"{p.text}:{p.weight:g}" for p in spec.text_prompts)


def _partial_steps(spec: RenderSpec) -> frozenset[int]:
    """The step numbers whose x̂₀ is saved as an intermediate (DD's intermediate_saves)."""
    saves = spec.intermediate_saves
    if isinstance(saves, int):
        span = spec.steps - spec.skip_steps
        return frozenset(spec.skip_steps + round(k * span / (saves + 1)) for k in range(1, saves + 1))
    return frozenset(int(s) for s in saves)


def symmetry_transform(spec: RenderSpec, num_steps: int):
    """DD's symmetry: mirror x_t once at each transformation_percent of the run (DDIM only)."""
    if spec.sampling_mode != "ddim" or not (spec.use_horizontal_symmetry or spec.use_vertical_symmetry):
        return None
    n = num_steps - spec.skip_steps
    at = {int(n * (1 - p)) for p in spec.transformation_percent}

    def mirror(x: torch.Tensor, i: int) -> torch.Tensor:
        if i not in at:
            return x
        w, h = x.shape[-1], x.shape[-2]
        if spec.use_horizontal_symmetry:
            x = torch.cat([x[..., : w // 2], x[..., : w // 2].flip(-1)], dim=-1)
        if spec.use_vertical_symmetry:
            x = torch.cat([x[..., : h // 2, :], x[..., : h // 2, :].flip(-2)], dim=-2)
        return x

    return mirror
