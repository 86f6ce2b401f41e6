"""One rule for steps and skip_steps wherever steps come from: a skip_steps left at DD's
default follows the steps (10 where it fits, else 10/250 of the steps); one the user chose is
kept, and a choice that does not fit is refused with the fix."""
from __future__ import annotations

import argparse
import json

import pytest

from commands.job_options import DiscoOptions, JobLimits, build_job
from engine.errors import SpecError
from engine.spec.render import RenderSpec, default_skip_steps, follow_steps
from engine.spec.sources import build_spec
from engine.spec.study import StudySpec, build_study


@pytest.mark.parametrize("steps, skip", [(2, 0), (10, 0), (11, 10), (50, 10), (1000, 10)])
def test_default_skip_steps(steps, skip):
    assert default_skip_steps(steps) == skip
    assert RenderSpec(steps=steps).skip_steps == skip


def test_follow_steps_drops_only_a_default_skip():
    assert follow_steps({"steps": 250, "skip_steps": 10}, {"steps": 5}) == {"steps": 5}
    assert follow_steps({"steps": 250, "skip_steps": 40}, {"steps": 5}) == {"steps": 5, "skip_steps": 40}
    assert follow_steps({"steps": 5, "skip_steps": 0}, {"steps": 250}) == {"steps": 250}
    assert follow_steps({"skip_steps": 10}, {"steps": 3, "skip_steps": 1}) == {"steps": 3, "skip_steps": 1}


def test_replace_and_json_round_trip_follow_steps():
    stored = RenderSpec.from_json(RenderSpec(steps=250).to_json())  # skip_steps now explicit
    assert stored.replace(steps=3).skip_steps == 0
    assert stored.replace(steps=3).replace(steps=100).skip_steps == 10
    with pytest.raises(SpecError, match="skip_steps: 40 skipped steps leave nothing to do"):
        RenderSpec(skip_steps=40).replace(steps=30)


def test_study_axis_of_steps_works_like_the_steps_flag():
    study = build_study(RenderSpec(seed=1), "steps=3,5", "clip_guidance_scale=1000,2000")
    assert [cell.spec.skip_steps for cell in study.cells()][:2] == [0, 0]
    again = StudySpec.from_json(study.to_json())  # as the engine reads it from the queue
    assert [(cell.spec.steps, cell.spec.skip_steps) for cell in again.cells()][:2] == [(3, 0), (5, 0)]


def test_cli_flag_over_our_settings_file(tmp_path):
    path = tmp_path / "ours.json"
    path.write_text(RenderSpec(steps=250, text_prompts="a").to_json(), encoding="utf-8")
    args = argparse.Namespace(settings=path, set=[], steps=3, width=None, height=None, seed=None,
                              prompt=None, batches=None)
    assert build_spec(args)[0].skip_steps == 0
    args.set = ["skip_steps=1"]
    assert build_spec(args)[0].skip_steps == 1


def test_bot_steps_over_a_preset_and_a_file():
    preset = RenderSpec(steps=250).to_json()
    job = build_job(DiscoOptions(prompt="a castle", steps=5), preset=preset, preset_name="p",
                    limits=JobLimits())
    assert (job.spec.steps, job.spec.skip_steps) == (5, 0)
    file = json.dumps({"text_prompts": {"0": ["a"]}, "steps": 250, "skip_steps": 10})
    job = build_job(DiscoOptions(steps=4, settings_file=file), limits=JobLimits())
    assert (job.spec.steps, job.spec.skip_steps) == (4, 0)


# ---- DD's per-model behaviour (cut schedules and size) ------------------------------------------

def test_a_model_s_dd_schedules_and_size_apply_where_not_chosen():
    from engine.models.registry import CUT_SCHEDULE_GROUPS

    pixel = RenderSpec(diffusion_model="pixel_art_diffusion_hard_256")
    assert (pixel.width, pixel.height) == (512, 448)
    assert pixel.schedules() == RenderSpec(**CUT_SCHEDULE_GROUPS["pad_or_pulp"]).schedules()
    assert any("pixel_art_diffusion_hard_256's DD schedules (pad_or_pulp)" in n for n in pixel.notes)
    assert any(n.startswith("size 512x448: DD's size") for n in pixel.notes)
    assert RenderSpec.from_json(pixel.to_json()) == pixel
    chosen = RenderSpec(diffusion_model="watercolordiffusion", width=640, cut_overview="[10]*1000")
    assert (chosen.width, chosen.height, chosen.cut_overview) == (640, 448, "[10]*1000")
    assert any(n.startswith("height 448: DD's size for watercolordiffusion") for n in chosen.notes)
    assert chosen.cut_innercut == RenderSpec(**CUT_SCHEDULE_GROUPS["watercolor"]).cut_innercut
    back = pixel.replace(diffusion_model="512x512_diffusion_uncond_finetune_008100")
    assert back == RenderSpec() and back.notes == ()


def test_study_axis_of_models_gets_each_model_s_defaults():
    study = build_study(RenderSpec(seed=1, steps=20), "diffusion_model=512x512_diffusion_uncond_"
                        "finetune_008100,pixel_art_diffusion_soft_256")
    first, second = (cell.spec for cell in study.cells())
    assert (first.width, second.width) == (1280, 512)
    assert second.cut_innercut == "[1]*200+[4]*200+[8]*200+[10]*400"  # DD's pad_or_pulp


def test_bot_model_choice_over_a_full_preset_gets_the_model_s_defaults():
    preset = RenderSpec(steps=50).to_json()  # a preset stores every setting
    job = build_job(DiscoOptions(prompt="a castle", model="pixel_art_diffusion_soft_256"),
                    preset=preset, preset_name="p", limits=JobLimits())
    assert (job.spec.width, job.spec.height) == (512, 448)
    assert job.spec.cut_innercut == "[1]*200+[4]*200+[8]*200+[10]*400"
    assert any("DD schedules (pad_or_pulp)" in note for note in job.notes)
