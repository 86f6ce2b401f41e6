"""GoBig: one image enlarged by re-diffusing it tile by tile (ProgRock Diffusion's and the DD
goBIG notebook's upscale; no other model than the render's own).

1. Enlarge the image `gobig_scale`× with Lanczos (`engine.media.tiles.enlarge`).
2. Cut the canvas into overlapping tiles of the model's native size (`engine.spec.gobig`).
3. Re-diffuse each tile with the same prompts and settings from a partial skip: the tile is
   the init image, `gobig_skip_ratio` of the steps are skipped, each tile has its own seed,
   Perlin init, symmetry and intermediate saves are off.
4. Blend the tiles with feathered masks that sum to 1 (`engine.media.tiles.blend_tiles`).

Each finished tile is a PNG under the image's work folder (`tile(K)_0.png`, written atomically
by the pipeline), so a run killed mid-way re-diffuses only the tiles it had not finished; the
blend of the same tiles is the same image.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from engine.diffusion.images import image_to_tensor
from engine.diffusion.pipeline import DiscoPipeline
from engine.diffusion.sampling import StepInfo
from engine.media.files import save_png
from engine.media.tiles import Tile, blend_tiles, enlarge
from engine.spec.gobig import gobig_tiles, output_size, overlap, tile_seed, tile_skip_steps
from engine.spec.render import RenderSpec

TILE_BATCH = "tile"


@dataclass(frozen=True)
class TileEvent:
    """What the GoBig pass reports: a step inside tile `tile` (0-based) of `tiles`, or (with
    `path` and no `step`) that tile finished and kept on disk — `reused` when an earlier run
    had finished it."""

    tile: int
    tiles: int
    step: StepInfo | None = None
    path: Path | None = None
    reused: bool = False


TileCallback = Callable[[TileEvent], None]


def tile_spec(spec: RenderSpec, tile: Tile, image_seed: int) -> RenderSpec:
    """The settings one tile is re-diffused with: the image's, at the tile's size, from the
    tile itself, with what makes no sense for a piece of a picture switched off."""
    return spec.replace(width=tile.width, height=tile.height, n_batches=1, batch_name=TILE_BATCH,
                        seed=tile_seed(image_seed, tile.index), skip_steps=tile_skip_steps(spec),
                        init_image=None, perlin_init=False, use_vertical_symmetry=False,
                        use_horizontal_symmetry=False, intermediate_saves=0, gobig=False, gobig_init=None)


def tile_path(work: Path, tile: Tile) -> Path:
    return work / f"{TILE_BATCH}({tile.index})_0.png"


def finished_tiles(spec: RenderSpec, work: Path) -> int:
    """How many of an image's tiles an earlier run already kept."""
    return sum(tile_path(work, tile).is_file() for tile in gobig_tiles(spec))


def gobig_image(pipeline: DiscoPipeline, spec: RenderSpec, source: Image.Image, image_seed: int,
                work: Path, out: Path, *, callback: TileCallback | None = None,
                should_cancel: Callable[[], bool] | None = None) -> Path:
    """`source` enlarged into the PNG `out` (steps 1–4 above), which carries the settings that
    made it; tiles kept in `work`."""
    canvas = enlarge(source.convert("RGB").resize((spec.width, spec.height), Image.Resampling.LANCZOS),
                     spec.gobig_scale)
    tiles = gobig_tiles(spec)
    finished = []
    for tile in tiles:
        path = tile_path(work, tile)
        reused = path.is_file()
        if not reused:
            _rediffuse(pipeline, spec, canvas, tile, image_seed, work, len(tiles), callback, should_cancel)
        with Image.open(path) as done:
            finished.append(done.convert("RGB"))
        if callback:
            callback(TileEvent(tile.index, len(tiles), path=path, reused=reused))
    width, height = output_size(spec)
    blended = blend_tiles(width, height, tiles, finished, overlap(spec))
    return save_png(blended, out, pipeline.png_text(spec, image_seed))


def _rediffuse(pipeline: DiscoPipeline, spec: RenderSpec, canvas: Image.Image, tile: Tile, image_seed: int,
               work: Path, tiles: int, callback: TileCallback | None,
               should_cancel: Callable[[], bool] | None) -> None:
    piece = canvas.crop(tile.box)
    init = image_to_tensor(piece, tile.width, tile.height, pipeline.device)

    def on_step(_context, info: StepInfo) -> None:
        if callback:
            callback(TileEvent(tile.index, tiles, step=info))

    pipeline(tile_spec(spec, tile, image_seed), out_dir=work, callback=on_step, run=tile.index, init=init,
             should_cancel=should_cancel)
