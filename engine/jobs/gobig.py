"""GoBig inside a still job (a `RenderSpec` with `gobig` on; no job kind of its own).

`enlarge_images` runs in the render thread after the still's images exist — rendered by this
job, or the one image named by `gobig_init` (⬆ on a result, `disco gobig IMAGE`) — and enlarges
each with `engine.diffusion.gobig.gobig_image` into `<job>/gobig/`:

- progress: tile k of n over the whole job (`frame`/`frames`), and the step inside the tile;
  the preview is the tile being diffused, then each finished tile;
- each finished tile is kept (`<job>/gobig/<image>/tile(K)_0.png`, pushed as the job's blob
  before it counts) and billed at once (engine/jobs/units.py), so a resumed attempt — on this
  host or another — re-diffuses only the tiles not finished and charges none twice; each
  enlarged image is pushed as soon as it is blended; when the requester's GPU time runs out
  with tiles to go, it stops;
- a cancel (or a lost lease) stops before the next step.

Returns the enlarged PNGs in image order.
"""
from __future__ import annotations

import time
from pathlib import Path

from PIL import Image

from engine.diffusion.gobig import TileEvent, gobig_image
from engine.errors import Cancelled
from engine.jobs.context import JobContext
from engine.jobs.files import save_preview
from engine.jobs.units import UnitProgress
from engine.media.stills import read_still
from engine.spec.gobig import MAX_GOBIG_PIXELS, gobig_tiles
from engine.spec.render import RenderSpec, batch_image_seed

FOLDER = "gobig"


def gobig_sources(spec: RenderSpec, images: list[str]) -> list[tuple[Path, int]]:
    """The images to enlarge with the seed each was made with (its tiles' seeds follow it)."""
    seed = spec.seed or 0
    if spec.gobig_init:
        return [(Path(spec.gobig_init), seed)]
    return [(Path(path), batch_image_seed(seed, index)) for index, path in enumerate(images)]


def output_path(folder: Path, spec: RenderSpec, index: int) -> Path:
    return folder / FOLDER / f"{spec.batch_name}(0)_{index}_x{spec.gobig_scale}.png"


def enlarge_images(ctx: JobContext, spec: RenderSpec, images: list[str]) -> list[str]:
    """The render thread's GoBig pass over `images` (see the module docstring)."""
    sources = gobig_sources(spec, images)
    per_image = len(gobig_tiles(spec))
    progress = UnitProgress(ctx, per_image * len(sources), "tile")
    outputs = []
    for index, (source, image_seed) in enumerate(sources):
        out = output_path(ctx.folder, spec, index)
        if not out.is_file():
            picture = read_still(source, MAX_GOBIG_PIXELS)
            _enlarge_one(ctx, spec, picture, image_seed, index, per_image, progress, out)
            if ctx.push(out, "output") is None:  # the attempt lost the job
                raise Cancelled("the job's lease was lost")
        outputs.append(str(out))
    return outputs


def _enlarge_one(ctx: JobContext, spec: RenderSpec, picture: Image.Image, image_seed: int, index: int,
                 per_image: int, progress: UnitProgress, out: Path) -> None:
    folder, first = ctx.folder, index * per_image

    def on_tile(event: TileEvent) -> None:
        unit = first + event.tile
        if event.step is not None:
            if spec.display_rate and event.step.step % spec.display_rate == 0:
                ctx.show(save_preview(folder, event.step.pred_xstart))
            progress.step(unit, event.step)
        elif event.reused:  # finished and billed by an earlier attempt
            ctx.live.frame, progress.unit_started = unit, time.monotonic()
        elif ctx.push(event.path, "frame") is not None:  # kept as a blob: now it counts
            with Image.open(event.path) as tile:
                preview = save_preview(folder, tile)
            progress.finished(unit, preview)

    def run() -> Path:
        return gobig_image(ctx.pipeline, spec, picture, image_seed, folder / FOLDER / str(index), out,
                           callback=on_tile, should_cancel=ctx.cancel.is_set)

    try:
        ctx.guarded(run, f"out of GPU memory while re-diffusing a GoBig tile of {spec.diffusion_model}; "
                         f"use fewer cutn_batches or fewer CLIP models")
    except Cancelled:
        if ctx.live.quota_spent:
            raise progress.quota_spent(()) from None
        raise
