"""GoBig's geometry, torch-free: the enlarged canvas, the grid of overlapping tiles that covers
it, and the feathered masks that blend the re-diffused tiles back into one image.

The layout is the DD-goBIG notebook's 2-D grid (not ProgRock's vertical strips): tiles of one
size, spaced evenly so the first and last touch the canvas edges and neighbours overlap by at
least the requested overlap. Each tile's weight is a product of two 1-D ramps (across x and y)
that rise over the overlap on every side that has a neighbour; the ramps are normalised per
axis, so at every pixel the weights of all tiles sum to exactly 1 however many tiles overlap
there — a partition of unity, never a seam or a darkened corner.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Tile:
    """One tile: its place on the canvas (left, top) and its size; `index` orders the tiles
    row by row, which is also the order they are rendered and resumed in."""

    index: int
    left: int
    top: int
    width: int
    height: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """PIL's (left, upper, right, lower)."""
        return self.left, self.top, self.left + self.width, self.top + self.height


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of `tile` pixels start along an axis of `length` so that they cover it, the
    first at 0 and the last flush with the end, neighbours overlapping by at least `overlap`."""
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"a tile of {tile} px cannot overlap by {overlap} px")
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, tile_width: int, tile_height: int, overlap: int) -> list[Tile]:
    """The tiles covering a `width`×`height` canvas, row by row. A canvas side smaller than the
    tile shrinks the tile to it."""
    tile_width, tile_height = min(tile_width, width), min(tile_height, height)
    xs = axis_starts(width, tile_width, min(overlap, tile_width - 1))
    ys = axis_starts(height, tile_height, min(overlap, tile_height - 1))
    return [Tile(row * len(xs) + col, x, y, tile_width, tile_height)
            for row, y in enumerate(ys) for col, x in enumerate(xs)]


def _ramps(length: int, starts: list[int], tile: int, feather: int) -> np.ndarray:
    """[tiles, length] weights along one axis, each tile's ramp normalised over all tiles."""
    ramps = np.zeros((len(starts), length), dtype=np.float64)
    for i, start in enumerate(starts):
        pos = np.arange(tile, dtype=np.float64) + 0.5  # pixel centres inside the tile
        ramp = np.ones(tile)
        if start > 0:  # a neighbour before: rise over the feather
            ramp = np.minimum(ramp, pos / feather)
        if start + tile < length:  # a neighbour after: fall over the feather
            ramp = np.minimum(ramp, (tile - pos) / feather)
        ramps[i, start:start + tile] = ramp
    return ramps / ramps.sum(axis=0, keepdims=True)


def tile_masks(width: int, height: int, tiles: list[Tile], overlap: int) -> list[np.ndarray]:
    """Each tile's blend weights ([tile height, tile width], in [0, 1]) for a grid made by
    `tile_grid`; placed on the canvas they sum to 1 at every pixel."""
    xs = sorted({t.left for t in tiles})
    ys = sorted({t.top for t in tiles})
    tw, th = tiles[0].width, tiles[0].height
    wx = _ramps(width, xs, tw, max(1, min(overlap, tw - 1)))
    wy = _ramps(height, ys, th, max(1, min(overlap, th - 1)))
    masks = []
    for tile in tiles:
        col, row = xs.index(tile.left), ys.index(tile.top)
        across = wx[col, tile.left:tile.left + tw]
        down = wy[row, tile.top:tile.top + th]
        masks.append(np.outer(down, across))
    return masks


def blend_tiles(width: int, height: int, tiles: list[Tile], images: list[Image.Image],
                overlap: int) -> Image.Image:
    """The canvas made of the re-diffused tiles, each weighted by its feathered mask."""
    canvas = np.zeros((height, width, 3), dtype=np.float64)
    for tile, image, mask in zip(tiles, images, tile_masks(width, height, tiles, overlap), strict=True):
        pixels = np.asarray(image.convert("RGB").resize((tile.width, tile.height)), dtype=np.float64)
        canvas[tile.top:tile.top + tile.height, tile.left:tile.left + tile.width] += pixels * mask[..., None]
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")


def enlarge(image: Image.Image, scale: int) -> Image.Image:
    """The classical first step: `scale`× with Lanczos, as ProgRock and the goBIG notebook do."""
    width, height = image.size
    return image.convert("RGB").resize((width * scale, height * scale), Image.Resampling.LANCZOS)
