"""GoBig's geometry: the tile grid covers the canvas with the overlap asked for, the feathered
masks are a partition of unity, and blending tiles of one picture gives that picture back."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.media.tiles import axis_starts, blend_tiles, enlarge, tile_grid, tile_masks

LAYOUTS = [(128, 128, 64, 64, 16), (1024, 1024, 512, 512, 64), (2560, 1536, 512, 512, 64),
           (192, 128, 64, 64, 32), (96, 64, 64, 64, 8), (64, 64, 64, 64, 16)]


@pytest.mark.parametrize("width,height,tw,th,overlap", LAYOUTS)
def test_the_grid_covers_the_canvas_with_at_least_the_overlap(width, height, tw, th, overlap):
    tiles = tile_grid(width, height, tw, th, overlap)
    covered = np.zeros((height, width), dtype=int)
    for tile in tiles:
        assert 0 <= tile.left and tile.left + tile.width <= width
        assert 0 <= tile.top and tile.top + tile.height <= height
        covered[tile.top:tile.top + tile.height, tile.left:tile.left + tile.width] += 1
    assert covered.min() >= 1
    for starts, tile in ((sorted({t.left for t in tiles}), tw), (sorted({t.top for t in tiles}), th)):
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(tile - gap >= overlap for gap in gaps)  # neighbours share at least `overlap`
    assert [t.index for t in tiles] == list(range(len(tiles)))


def test_twice_a_64_image_in_64_tiles_is_three_by_three():
    assert axis_starts(128, 64, 16) == [0, 32, 64]
    assert len(tile_grid(128, 128, 64, 64, 16)) == 9
    assert len(tile_grid(1024, 1024, 512, 512, 64)) == 9  # the goBIG notebook's 2× at 512


@pytest.mark.parametrize("width,height,tw,th,overlap", LAYOUTS)
def test_the_masks_sum_to_one_everywhere(width, height, tw, th, overlap):
    tiles = tile_grid(width, height, tw, th, overlap)
    total = np.zeros((height, width))
    for tile, mask in zip(tiles, tile_masks(width, height, tiles, overlap), strict=True):
        assert mask.shape == (tile.height, tile.width)
        assert mask.min() >= 0 and mask.max() <= 1 + 1e-12
        total[tile.top:tile.top + tile.height, tile.left:tile.left + tile.width] += mask
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


def test_masks_are_feathered_at_inner_edges_and_solid_inside():
    tiles = tile_grid(128, 128, 64, 64, 16)
    masks = tile_masks(128, 128, tiles, 16)
    centre = masks[4]  # the middle tile has neighbours on all four sides
    assert centre[0, 32] < 0.1 and centre[32, 0] < 0.1 and centre[63, 32] < 0.1
    assert centre[32, 32] > 0.3
    corner = masks[0]
    assert corner[0, 0] == pytest.approx(1.0)  # the canvas edge is not faded
    row = corner[20, :]
    assert all(a >= b - 1e-12 for a, b in zip(row, row[1:]))  # fades towards its neighbour only


def test_blending_pieces_of_one_picture_gives_it_back():
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (128, 192, 3), dtype=np.uint8), "RGB")
    tiles = tile_grid(192, 128, 64, 64, 16)
    blended = blend_tiles(192, 128, tiles, [picture.crop(t.box) for t in tiles], 16)
    assert np.array_equal(np.asarray(blended), np.asarray(picture))


def test_enlarge_is_lanczos_by_the_scale():
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    big = enlarge(image, 3)
    assert big.size == (192, 144) and big.getpixel((100, 70)) == (10, 200, 30)


def test_a_tile_cannot_overlap_by_its_own_size():
    with pytest.raises(ValueError):
        axis_starts(128, 64, 64)
