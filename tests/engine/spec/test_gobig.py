"""GoBig's settings on a RenderSpec: the tiles a spec gets, the seeds and skips of its tiles,
and every bound with the refusal that names the setting and the fix."""
from __future__ import annotations

import pytest

from engine.errors import SpecError
from engine.spec.gobig import (
    MAX_GOBIG_PIXELS,
    gobig_tiles,
    gobig_units,
    output_size,
    overlap,
    tile_seed,
    tile_size,
    tile_skip_steps,
)
from engine.spec.render import RenderSpec


def spec(**changes) -> RenderSpec:
    return RenderSpec.from_dict({"width": 64, "height": 64, "steps": 10, "gobig": True, **changes})


def test_a_small_render_gets_its_own_size_as_tiles_and_at_most_half_a_tile_of_overlap():
    small = spec()
    assert tile_size(small) == (64, 64) and output_size(small) == (128, 128)
    assert small.gobig_overlap == 64 and overlap(small) == 32 and overlap(spec(gobig_overlap=16)) == 16
    assert len(gobig_tiles(small)) == 9 and gobig_units(small.replace(n_batches=2)) == 18
    assert gobig_units(spec(n_batches=3, gobig_init="/tmp/a.png")) == 9  # the one image to enlarge


def test_a_large_render_is_tiled_at_the_models_native_size():
    big = spec(width=1280, height=768)
    assert tile_size(big) == (512, 512) and output_size(big) == (2560, 1536)
    assert overlap(big) == 64 and {(t.width, t.height) for t in gobig_tiles(big)} == {(512, 512)}
    assert tile_size(spec(width=1280, height=768, diffusion_model="256x256_diffusion_uncond")) == (256, 256)


def test_tiles_skip_a_share_of_the_steps_and_draw_their_own_seeds():
    assert tile_skip_steps(spec(steps=100)) == 60
    assert tile_skip_steps(spec(steps=10, gobig_skip_ratio=0.95)) == 9  # never all of them
    assert [tile_seed(7, k) for k in range(3)] == [8, 9, 10]
    assert tile_seed(2**32 - 1, 0) == 0


def test_gobig_off_changes_nothing():
    plain = RenderSpec.from_dict({"width": 64, "height": 64, "steps": 10})
    assert not plain.gobig and gobig_units(plain) == 0 and plain.gobig_overlap == 64


@pytest.mark.parametrize("changes,param,fix", [
    ({"width": 4096, "height": 4096}, "gobig_scale", "smaller gobig_scale"),
    ({"gobig_scale": 4}, "gobig_scale", "2..3"),
    ({"gobig_scale": 1}, "gobig_scale", "2..3"),
    ({"gobig_overlap": 4}, "gobig_overlap", "8..256"),
    ({"gobig_skip_ratio": 1.0}, "gobig_skip_ratio", "0.1..0.95"),
    ({"gobig": False, "gobig_init": "/tmp/a.png"}, "gobig_init", "set gobig=true"),
    ({"gobig_init": "x" * 1001}, "gobig_init", "1000 characters"),
])
def test_every_gobig_bound_is_refused_with_the_rule_and_the_fix(changes, param, fix):
    with pytest.raises(SpecError) as err:
        spec(**changes)
    assert str(err.value).startswith(param) and fix in str(err.value)


def test_the_pixel_bound_is_the_enlarged_image():
    side = 2048
    assert side * 2 * side * 2 <= MAX_GOBIG_PIXELS
    assert output_size(spec(width=side, height=side)) == (4096, 4096)
