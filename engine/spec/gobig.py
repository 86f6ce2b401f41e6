"""GoBig's settings read off a `RenderSpec` (its `gobig_*` fields), torch-free, so the bot sizes
and bounds a GoBig job exactly as the engine will render it.

- tiles are the model's native size (512 for the 512 models, 256 for the 256 ones), or the
  image's own size when that is smaller, laid on the `gobig_scale`× canvas by
  `engine.media.tiles.tile_grid`;
- each tile skips `gobig_skip_ratio` of the steps (ProgRock's 0.6 by default) and draws its
  own seed (image seed + 1 + tile index: one shared seed repeats the same motif in every tile);
- neighbouring tiles overlap by `gobig_overlap`, at most half a tile;
- the enlarged image is at most `MAX_GOBIG_PIXELS`.

Reads only plain attributes of the spec (no import of `engine.spec.render`, which calls
`gobig_problems` while it validates).
"""
from __future__ import annotations

from typing import Any

from engine.media.tiles import Tile, tile_grid
from engine.models.registry import diffusion_config

MAX_GOBIG_PIXELS = 4096 * 4096
MAX_SEED = 2**32 - 1


def native_side(diffusion_model: str) -> int:
    """The side the diffusion model was trained at (its `image_size`)."""
    return int(diffusion_config(diffusion_model)["image_size"])


def tile_size(spec: Any) -> tuple[int, int]:
    """A GoBig tile's width and height for `spec`."""
    native = native_side(spec.diffusion_model)
    return min(spec.width, native), min(spec.height, native)


def output_size(spec: Any) -> tuple[int, int]:
    """The enlarged image's width and height."""
    return spec.width * spec.gobig_scale, spec.height * spec.gobig_scale


def overlap(spec: Any) -> int:
    """The overlap used: `gobig_overlap`, at most half the tile's shorter side (a small render's
    tiles are small)."""
    return min(spec.gobig_overlap, min(tile_size(spec)) // 2)


def gobig_tiles(spec: Any) -> list[Tile]:
    """The tiles of one image's GoBig pass, in render order."""
    width, height = output_size(spec)
    tile_width, tile_height = tile_size(spec)
    return tile_grid(width, height, tile_width, tile_height, overlap(spec))


def tile_skip_steps(spec: Any) -> int:
    """Steps each tile skips: at least one (the tile is the init), at most all but one."""
    return min(spec.steps - 1, max(1, round(spec.steps * spec.gobig_skip_ratio)))


def tile_seed(image_seed: int, tile_index: int) -> int:
    return (image_seed + 1 + tile_index) % (MAX_SEED + 1)


def gobig_units(spec: Any) -> int:
    """Tiles of the whole job: every image's (the one `gobig_init` image's when it is given)."""
    images = 1 if spec.gobig_init else spec.n_batches
    return images * len(gobig_tiles(spec)) if spec.gobig else 0


def gobig_problems(spec: Any) -> list[tuple[str, str, str]]:
    """(param, what is wrong, fix) for each GoBig setting that cannot work with the rest."""
    if not spec.gobig:
        if spec.gobig_init:
            return [("gobig_init", "an image to enlarge is given but gobig is off",
                     "set gobig=true, or remove gobig_init")]
        return []
    problems = []
    width, height = output_size(spec)
    if width * height > MAX_GOBIG_PIXELS:
        problems.append(("gobig_scale", f"the enlarged image would be {width}×{height} = "
                         f"{width * height:,} pixels; at most {MAX_GOBIG_PIXELS:,}",
                         "use a smaller gobig_scale or a smaller width and height"))
    return problems
