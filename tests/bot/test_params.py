"""bot/params.py: the Range aliases of the shared options are the spec's own bounds."""
from __future__ import annotations

import pytest

from bot.params import (
    CutnBatches,
    Fps,
    Frames,
    GuidanceScale,
    Images,
    InitScale,
    Seed,
    Side,
    SkipSteps,
    Steps,
    allowed_bounds,
)
from engine.errors import SpecError
from engine.spec.animation import AnimationSpec
from engine.spec.render import RenderSpec


def render(field: str, **more):
    return lambda value: RenderSpec.from_dict({**more, field: value})


def animation(field: str, **more):
    return lambda value: AnimationSpec.from_dict({**more, field: value})


RANGES = {  # alias: a spec built with one value of its option
    "steps": (Steps, render("steps")), "width": (Side, render("width")), "height": (Side, render("height")),
    "seed": (Seed, render("seed")), "clip_guidance_scale": (GuidanceScale, render("clip_guidance_scale")),
    "init_scale": (InitScale, render("init_scale")), "cutn_batches": (CutnBatches, render("cutn_batches")),
    "skip_steps": (SkipSteps, render("skip_steps", steps=1000)), "n": (Images, render("n_batches")),
    "frames": (Frames, animation("max_frames", render={"steps": 2})), "fps": (Fps, animation("fps")),
}


@pytest.mark.parametrize("option", sorted(RANGES))
def test_each_range_is_exactly_what_the_spec_accepts(option):
    alias, build = RANGES[option]
    build(alias.min_value)
    build(alias.max_value)
    for value in (alias.min_value - 1, alias.max_value + 1):
        with pytest.raises(SpecError, match="below the minimum|above the maximum"):
            build(value)


def test_the_bounds_are_those_the_commands_always_had():
    bounds = {option: (alias.min_value, alias.max_value) for option, (alias, _) in RANGES.items()}
    assert bounds == {"steps": (2, 1000), "width": (64, 4096), "height": (64, 4096), "seed": (0, 2**32 - 1),
                      "clip_guidance_scale": (0, 10_000_000), "init_scale": (0, 10_000_000),
                      "cutn_batches": (1, 64), "skip_steps": (0, 999), "n": (1, 100), "frames": (1, 10_000),
                      "fps": (1, 60)}


def test_allowed_bounds_reads_the_start_of_an_allowed_text_or_refuses():
    assert allowed_bounds("2..1000 (whole number)") == (2, 1000)
    assert allowed_bounds("0..4294967295 or none") == (0, 2**32 - 1)
    assert allowed_bounds("-0.5..1.5") == (-0.5, 1.5)
    with pytest.raises(ValueError, match="no low..high"):
        allowed_bounds("above 0, at most 10")
