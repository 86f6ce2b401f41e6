"""Server rules in the commands layer: defaults typed by admins (checked, bounded, no images),
channel defaults over the server's under the user's options, allowed diffusion and CLIP models
(every render of a job), and the most images per job from the server's limits."""
from __future__ import annotations

import random

import pytest

from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits, build_job
from commands.server_rules import (
    check_allowed_models,
    defaults_over_limits,
    parse_defaults,
    parse_model_list,
    rules_lines,
)
from engine.errors import SpecError
from engine.spec.render import RenderSpec
from engine.spec.study import build_study
from storage import GuildLimits


def job(**options):
    return build_job(DiscoOptions(prompt="a lighthouse", **options.pop("opts", {})),
                     rng=random.Random(1), **options)


def test_defaults_are_parsed_checked_and_normalised() -> None:
    assert parse_defaults("steps=150; eta=0.5") == {"steps": 150, "eta": 0.5}
    assert parse_defaults("diffusion_model=portrait_generator_v0") == {
        "diffusion_model": "portrait_generator_v001"}  # a unique prefix, as /disco reads it
    assert parse_defaults("width=700")["width"] == 640  # rounded down to a multiple of 64, as any job


@pytest.mark.parametrize("text, message", [
    ("steps=1", "steps"),
    ("init_image=/etc/passwd", "images come from attachments only"),
    ("steps=50; seed=5", "seed cannot be a default (every job would paint the same noise"),
    ("colour=red", "colour"),
    ("steps", "expected key=value"),
    ("steps=" + "1" * 40_000, "at most 20000 characters"),
    ("steps=50; zoom=0: (1.02)", "zoom is an animation setting; defaults hold settings every job shares "
                                 "(stills, animations, studies), so it cannot be one (rule: defaults) — type "
                                 "it in /animate settings: each time"),
])
def test_bad_defaults_are_refused_with_the_rule(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_defaults(text)
    assert str(caught.value).startswith("defaults: ") and message in str(caught.value)
    assert getattr(caught.value, "rule", "defaults") == "defaults"


def test_channel_defaults_lie_over_the_servers_and_under_the_users_options() -> None:
    server, channel = {"steps": 150, "eta": 0.5}, {"steps": 60}
    parsed = job(guild_defaults=server, channel_defaults=channel)
    assert parsed.spec.steps == 60 and parsed.spec.eta == 0.5
    assert "from the server defaults: eta=0.5 (your options override them)" in parsed.notes
    assert "from this channel's defaults: steps=60 (your options override them)" in parsed.notes
    # A seed stored as a default before that was refused: every job would get it, and 🔄 too.
    seeded = job(guild_defaults={"seed": 5, "eta": 0.5}, channel_defaults={"seed": 6})
    assert seeded.seed_was_random and seeded.spec.seed not in (5, 6) and seeded.spec.eta == 0.5
    assert "seed from the server defaults ignored: every job would paint the same noise, and 🔄 New seed " \
           "or /rerun would paint it again" in seeded.notes
    assert any(n.startswith("seed from this channel's defaults ignored") for n in seeded.notes)
    # A list is written out as the admin set it, not as "a list of 2 items".
    clips = job(guild_defaults={"clip_models": ["ViT-B-32::openai", "RN50::openai"], "cut_overview": [8] * 1000})
    assert ("from the server defaults: clip_models=ViT-B-32::openai,RN50::openai, cut_overview=a list of 1000 "
            "items (your options override them)") in clips.notes
    chosen = job(guild_defaults=server, channel_defaults=channel, opts={"steps": 80})
    assert chosen.spec.steps == 80 and not any("steps=60" in n for n in chosen.notes)


def test_model_lists() -> None:
    assert parse_model_list("ViT-B/32, rn50", "clip") == ["ViT-B-32::openai", "RN50::openai"]
    assert parse_model_list("every", "clip") is None
    # Named twice (or by an alias and its full name): kept once, as diffusion models are.
    assert parse_model_list("RN50::openai, rn50, RN50::openai", "clip") == ["RN50::openai"]
    assert parse_model_list("watercolordiffusion_2, watercolordiffusion_2", "diffusion") == ["watercolordiffusion_2"]
    assert parse_model_list("256x256_diffusion_uncond portrait_generator_v001", "diffusion") == [
        "256x256_diffusion_uncond", "portrait_generator_v001"]
    with pytest.raises(CommandError, match="'RN51' is not a known clip model .*fix: use names from") as caught:
        parse_model_list("RN50, RN51", "clip")
    assert caught.value.rule == "allowed_models"
    with pytest.raises(CommandError, match="'stable-diffusion' is not a known diffusion model"):
        parse_model_list("stable-diffusion", "diffusion")
    # A long name is shown in full, not cut to look like the name it should be.
    typo = "512x512_diffusion_uncond_finetune_008100x"
    with pytest.raises(CommandError, match=f"'{typo}' is not a known diffusion model \\(rule: allowed_models\\); "
                                           "did you mean 512x512_diffusion_uncond_finetune_008100\\?"):
        parse_model_list(f"256x256_diffusion_uncond, {typo}", "diffusion")
    with pytest.raises(CommandError, match="takes 1 to 64 model names: give some, or 'every'"):
        parse_model_list(" , ", "clip")
    with pytest.raises(CommandError, match="takes 1 to 64 model names"):
        parse_model_list(",".join(["RN50"] * 65), "clip")


def test_a_forbidden_clip_model_is_refused_naming_the_rule_and_the_fix() -> None:
    spec = RenderSpec.from_dict({"clip_models": ["ViT-B-32::openai", "RN50x64::openai"]})
    check_allowed_models(spec, None, None)
    with pytest.raises(CommandError) as caught:
        check_allowed_models(spec, None, ["ViT-B-32::openai", "RN50::openai"])
    message = str(caught.value)
    assert caught.value.rule == "allowed_clip_models" and "RN50x64::openai is not allowed" in message
    assert 'settings:"clip_models=ViT-B-32::openai"' in message


def test_every_study_cell_is_checked() -> None:
    base = RenderSpec.from_dict({"steps": 20})
    study = build_study(base, "diffusion_model=512x512_diffusion_uncond_finetune_008100,256x256_diffusion_uncond")
    check_allowed_models(study, ["512x512_diffusion_uncond_finetune_008100", "256x256_diffusion_uncond"], None)
    with pytest.raises(CommandError, match="256x256_diffusion_uncond is not allowed.*rule: allowed_models"):
        check_allowed_models(study, ["512x512_diffusion_uncond_finetune_008100"], None)


def test_the_servers_max_images_clamps_n() -> None:
    limits = JobLimits.from_guild(GuildLimits(max_images=2))
    parsed = job(limits=limits, opts={"n": 3})
    assert parsed.spec.n_batches == 2 and any("max_images" in note for note in parsed.notes)


def test_rules_lines() -> None:
    lines = rules_lines({"steps": 150}, {}, None, ("RN50::openai",))
    assert lines == ["Server defaults: `steps=150`", "This channel's defaults: none (the server's apply)",
                     "Diffusion models allowed: every model", "CLIP models allowed: RN50::openai"]


def test_defaults_over_the_limits_are_said_once_per_scope_that_differs() -> None:
    limits = JobLimits(max_steps=200, max_images=2)
    server = parse_defaults("steps=500; n_batches=4")
    channel = {**server, **parse_defaults("eta=0.5")}  # only repeats the server's problem
    other = {**server, **parse_defaults("steps=150")}
    text = defaults_over_limits({"the server's defaults": server, "<#1>'s defaults": channel,
                                 "<#2>'s defaults": other}, limits)
    lines = text.splitlines()
    assert len(lines) == 2 and lines[0].startswith("**Warning:** the server's defaults are over")
    assert "steps 500 → 200" in lines[0] and "images 4 → 2" in lines[0] and "raise the limits" in lines[0]
    assert lines[1].startswith("**Warning:** <#2>'s defaults") and "images 4 → 2" in lines[1]
    assert "steps 500" not in lines[1]  # 150 steps there: within the limit
    assert defaults_over_limits({"the server's defaults": parse_defaults("steps=150")}, limits) == ""
    assert defaults_over_limits({"the server's defaults": {}}, limits) == ""
