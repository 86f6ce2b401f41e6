"""How a job reads: the result message names what was made (a render, an animation or a study), a
failure shows the engine's message as written, a refusal names the job's kind in plain English."""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.jobtext import kind_words
from bot.poster import Poster
from bot.queueing import rerun_options
from commands.errors import CommandError
from storage import Database, JobKind, JobRequest


def queued_job(tmp_path):
    async def queued():
        db = await Database.open(tmp_path / "disco.db")
        try:
            return await db.jobs.enqueue(JobRequest(
                guild_id=1, channel_id=2, user_id=3, kind="still", spec_json='{"text_prompts": ["a pier"]}',
                spec_version=1, model_set="test-tiny", width=64, height=64, steps=8, seed=7))
        finally:
            await db.close()
    return asyncio.run(queued())


def test_the_result_text_names_what_was_rendered(tmp_path):
    job = queued_job(tmp_path)
    for rendered in ("render", "animation", "study"):
        text = Poster._result_text(job, ["a note"], rendered)
        assert text == f"<@3> your {rendered} is done · job `{job.id}` · seed `7`\n`a pier`\n• a note"
    # The engine's notes come first, as written: a quoted prompt neither pings nor formats.
    noted = replace(job, notes=("CLIP did not read the end of prompt 2: “…**8k** @everyone”",))
    assert Poster._result_text(noted, ["a note"], "render").splitlines()[2:] == [
        "• CLIP did not read the end of prompt 2: “…\\*\\*8k\\*\\* @\u200beveryone”", "• a note"]


def test_a_failure_shows_the_engines_message_as_written(tmp_path):
    # Setting names and schedules are not markdown, a quoted prompt neither pings nor formats.
    job = replace(queued_job(tmp_path), state="failed",
                  error_message="cut_overview: [12]*400 is short;\n prompt `@everyone` **x**")
    assert Poster._failure_text(job) == (f"<@3> job `{job.id}` failed: cut\\_overview: [12]\\*400 is short; "
                                         f"prompt \\`@\u200beveryone\\` \\*\\*x\\*\\*")


def test_a_kind_reads_in_a_sentence(tmp_path):
    assert [kind_words(kind) for kind in JobKind] == ["a still job", "an animation job", "a study job"]
    job = replace(queued_job(tmp_path), kind=JobKind.ANIMATION)
    with pytest.raises(CommandError, match=f"job {job.id} is an animation job; only still images can be re-run"):
        asyncio.run(rerun_options(None, job))


def test_counts_and_small_gpu_times_read_as_people_write_them():
    from bot.settings_text import seconds_text
    from bot.study import study_line
    from engine.spec.render import RenderSpec
    from engine.spec.study import build_study
    from storage import QuotaExceeded

    one = build_study(RenderSpec(seed=5), "steps=50")
    assert study_line(one).startswith("**study of 1 cell** (1 × 1, seed `5`)")
    assert "study of 2 cells" in study_line(build_study(RenderSpec(seed=5), "steps=50, 60"))
    assert seconds_text(0.4) == "0.4 GPU-s (0.0 min)" and seconds_text(0) == "0 GPU-s (0.0 min)"
    assert seconds_text(3600) == "3,600 GPU-s (60.0 min)"
    spent = QuotaExceeded("user", "day", 0.5, 0.6, 0)
    assert "is used up: 0.6 of 0.5 GPU-seconds (day limit)" in str(spent)
    none = QuotaExceeded("guild", "month", 0, 0, 0)
    assert "this server's GPU budget for this month is 0 GPU-seconds: no renders" in str(none)


def test_a_preset_summary_shows_values_as_they_are_typed():
    from bot.cogs.presets import summary
    text = summary('{"clip_guidance_scale": 7000.0, "eta": 0.5, "use_secondary_model": true, '
                   '"cut_overview": "[12]*400+[4]*600", "clip_models": ["ViT-B-32::openai"]}')
    assert text.replace("\\", "") == ('clip_guidance_scale=7000; clip_models=["ViT-B-32::openai"]; '
                                      'cut_overview=[12]*400+[4]*600; eta=0.5; use_secondary_model=true')
