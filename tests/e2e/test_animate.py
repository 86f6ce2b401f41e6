"""`/animate` end to end: the real discord.py client against the loopback Discord, the real
SQLite file and a real `disco engine` child on the test-tiny models — an animation is echoed with
its frames and motion, shows "frame k/n" with the latest frame, and posts a readable MP4 with its
settings; 🎞 on a still result queues that image as frame 0 of a zoom; refusals name the rule;
an MP4 over the upload limit is re-encoded to fit."""
from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from engine.media.video import encode_mp4, probe_video
from storage import Database
from tests.support.bot import click, delivered, finish, make_bot, queue_animation, queue_job, run
from tests.support.fakediscord import FakeDiscord, FakeFile

# Tiny frames: 4 steps, 2+2 cuts, no LPIPS (frames_scale=0) — about a second a frame on CPU.
FAST = "frames_scale=0; frames_skip_steps=50%; cut_overview=[2]*1000; cut_innercut=[2]*1000"


def test_animate_end_to_end_posts_an_mp4(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        bot = make_bot(tmp_path, fake, spawn_engine=True)
        async with fake.run_client(bot):
            rec = await fake.slash("animate", {"prompt": "a lighthouse", "frames": 3, "steps": 4, "width": 64,
                                               "height": 64, "seed": 9, "zoom": "0: (1.05)", "fps": 6,
                                               "settings": FAST})
            callback = await fake.wait_for_callback(rec)
            assert callback.type == 5 and callback.delay < 3.0
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.followups_for(rec.id)[0]
            assert echo.content.startswith("**Queued**") and not echo.ephemeral, echo.content
            assert "**2D animation** · 3 frames at 6 fps" in echo.content and "zoom `0: (1.05)`" in echo.content
            job_id = re.search(r"`([0-9A-Z]{26})`", echo.content).group(1)

            progress = await fake.wait_for_message(fake.channel.id, lambda m: job_id in m.content
                                                   and "frame " in m.content and not m.interaction_id,
                                                   timeout=150)
            assert re.search(r"frame [1-3]/3 · step \d/\d", progress.content), progress.content
            await fake.wait_for(lambda: "preview.png" in fake.message(progress.id).files, 60, "for a preview")

            final = await fake.wait_for_message(fake.channel.id, lambda m: f"{job_id}.mp4" in m.files,
                                                timeout=200)
            job = await delivered(db, job_id)
            assert job.state == "succeeded" and job.kind == "animation" and job.frames == 3
            assert "your animation is done" in final.content and f"<@{fake.member.id}>" in final.content
            assert final.custom_ids == [f"disco:{a}:{job_id}" for a in ("new", "same", "recipe", "delete")]
            posted = tmp_path / "posted.mp4"
            posted.write_bytes(final.files[f"{job_id}.mp4"])
            info = probe_video(posted)
            assert (info.frames, info.width, info.height, round(info.fps)) == (3, 64, 64, 6)
            settings = json.loads(final.files[f"{job_id}_animation.json"])
            assert settings["zoom"] == "0: (1.05)" and settings["render"]["seed"] == 9
            await fake.wait_for(lambda: fake.message(progress.id).content.startswith("**Done**"))

            _, recipe = await click(fake, final.id, f"disco:recipe:{job_id}")
            assert "settings_file" in recipe.content and f"{job_id}_animation.json" in recipe.files
            _, again = await click(fake, final.id, f"disco:same:{job_id}")
            assert again.content.startswith("**Queued**"), again.content
            (rerun,) = [j for j in await db.jobs.list() if j.parent_job_id == job_id]
            assert rerun.kind == "animation" and rerun.seed == 9
            assert json.loads(rerun.spec_json)["zoom"] == "0: (1.05)"
            await db.jobs.cancel(rerun.id)
    run(body, tmp_path, timeout=400)


def test_animate_this_queues_the_still_as_frame_zero_of_a_zoom(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        png = await finish(db, tmp_path, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, lambda m: f"disco:animate:{job_id}:0" in m.custom_ids)
            _, answer = await click(fake, result.id, f"disco:animate:{job_id}:0")
            assert answer.content.startswith("**Queued**"), answer.content
            assert "frame 0 is the given image" in answer.content and "zoom `0: (1.02)`" in answer.content
        (anim,) = [j for j in await db.jobs.list() if j.parent_job_id == job_id]
        spec = json.loads(anim.spec_json)
        assert anim.kind == "animation" and anim.seed == 7 and anim.frames == 36
        assert spec["animation_mode"] == "2D" and spec["render"]["steps"] == 8
        assert spec["init_frame"] == (await db.jobs.get(job_id)).artifacts[0]  # the still's own blob
        assert await db.blobs.get(spec["init_frame"]) == png.read_bytes()
    run(body, tmp_path)


def _clip(path: Path, frames: int = 6, side: int = 64) -> bytes:
    rng = np.random.default_rng(1)
    encode_mp4([rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(frames)], path, fps=12)
    return path.read_bytes()


def test_animate_video_mode_counts_the_video_frames(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        video = FakeFile("clip.mp4", _clip(tmp_path / "clip.mp4", frames=6), "video/mp4")
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("animate", {"prompt": "an oil painting", "video": video, "steps": 4,
                                               "width": 64, "height": 64, "settings": "extract_nth_frame=2"})
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.message(rec.followup_ids[-1])
            assert not echo.ephemeral and "**video-input animation** · 3 frames" in echo.content, echo.content
        (job,) = await db.jobs.list()
        spec = json.loads(job.spec_json)
        assert job.frames == 3 and spec["animation_mode"] == "Video Input" and spec["max_frames"] == 3
        assert spec["video_init_path"].startswith("blob:") and spec["video_init_path"].endswith("/video_clip.mp4")
        assert await db.blobs.get(spec["video_init_path"]) == video.data
    run(body, tmp_path)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buffer, format="PNG")
    return buffer.getvalue()


def _sound(path: Path) -> bytes:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.2",
                    str(path)], check=True)
    return path.read_bytes()


def test_animate_refusals_name_the_rule_and_the_fix(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        text = FakeFile("notes.txt", b"hello", "text/plain")
        cases = (({"mode": "video"}, "video mode needs a video"),
                 ({"video": FakeFile("c.mp4", _clip(tmp_path / "c.mp4"), "video/mp4"), "mode": "2D"},
                  "choose mode video"),
                 ({"video": text}, "attach an MP4"),
                 ({"video": FakeFile("bad.mp4", b"not a video at all", "video/mp4")}, "not a readable video"),
                 ({"video": FakeFile("photo.mp4", _png(), "video/mp4")}, "is a PNG image, not a video"),
                 ({"video": FakeFile("cut.mp4", _clip(tmp_path / "whole.mp4")[:-2000], "video/mp4")},
                  "video: cut.mp4 — the video is damaged or cut short"),
                 ({"video": FakeFile("voice.mp4", _sound(tmp_path / "voice.mp4"), "video/mp4")},
                  "holds only sound"),
                 ({"video": FakeFile("big.mp4", bytes(10 * 2**20 + 1), "video/mp4")}, "at most 10 MiB"),
                 ({"settings": "video_init_path=/etc/passwd"}, "attachments only"),
                 ({"zoom": "0: (1), 10: (-2)"}, "zoom"),
                 ({"settings": "turbo_mode=true"}, "turbo works only in 3D"))
        async with fake.run_client(make_bot(tmp_path, fake)):
            for options, expected in cases:
                rec = await fake.slash("animate", {"prompt": "a lighthouse", **options})
                await fake.wait_for(lambda: rec.followup_ids)
                answer = fake.message(rec.followup_ids[-1])
                assert answer.ephemeral and answer.content.startswith("**Not queued:**"), answer.content
                assert expected in answer.content, (expected, answer.content)
        assert await db.jobs.list() == []
        swept = await db.blobs.sweep(retention_s=0, grace_s=-1)  # no job names a refused request's uploads
        assert await db.blobs.count() == (0, 0) and swept.job_files == 0
    run(body, tmp_path)


def test_frames_over_the_server_limit_are_clamped_with_a_note(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_frames=20)
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("animate", {"prompt": "a lighthouse", "frames": 500, "steps": 4})
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.message(rec.followup_ids[-1])
            text = echo.content.replace("\\", "")  # the echo escapes Markdown
            assert not echo.ephemeral and "frames 500 → 20" in text and "(max_frames)" in text, text
        (job,) = await db.jobs.list()
        assert job.frames == 20
    run(body, tmp_path)


def test_an_mp4_over_the_upload_limit_is_reencoded_to_fit(tmp_path):
    from types import SimpleNamespace

    from bot.animate import SETTINGS_MARGIN, result_files

    rng = np.random.default_rng(2)
    source = encode_mp4([rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(24)],
                        tmp_path / "animation.mp4", fps=12)
    limit = SETTINGS_MARGIN + 200_000
    assert source.stat().st_size > limit
    job = SimpleNamespace(id="01JANIMATIONTESTJOB0000000", artifacts=(str(source),),
                          spec_json=json.dumps({"animation_mode": "2D"}))
    files, notes = result_files(job, limit)
    mp4 = next(f for f in files if f.filename.endswith(".mp4"))
    data = mp4.fp.read()
    assert len(data) <= limit - SETTINGS_MARGIN and any("re-encoded" in n for n in notes), notes
    (tmp_path / "fitted.mp4").write_bytes(data)
    assert probe_video(tmp_path / "fitted.mp4").frames == 24
    assert source.stat().st_size > limit  # the full-quality file stays on the server


def test_progress_words_and_time_left_of_an_animation():
    from types import SimpleNamespace

    from bot.jobtext import progress_words, prompt_text, seconds_left

    # Frame 0 runs 40 steps; later frames cost 20 on average (`steps`); 2 s a step.
    job = SimpleNamespace(kind="animation", steps=20, frames=10, progress_total=40, progress_step=10,
                          progress_frame=0, progress_frames=10, seconds_per_step=2.0,
                          spec_json=json.dumps({"text_prompts": {"0": [{"text": "a castle", "weight": 2}],
                                                                 "60": [{"text": "a city", "weight": 1}]}}))
    assert progress_words(job) == "frame 1/10 · step 10/40"
    assert seconds_left(job) == 2.0 * (30 + 9 * 20)
    assert prompt_text(job) == "0: a castle:2 || 60: a city:1"
    still = SimpleNamespace(**{**vars(job), "kind": "still", "frames": 1, "progress_frames": 1})
    assert progress_words(still) == "step 10/40" and seconds_left(still) == 60.0


def test_a_cancelled_animation_still_posts_the_frames_it_finished(tmp_path):
    from tests.support.bot import OWNER

    async def body(fake: FakeDiscord, db: Database) -> None:
        job = await queue_animation(db, fake)
        claimed = await db.leases.claim(OWNER)
        partial = tmp_path / "jobs" / job.id / "partial.mp4"
        partial.parent.mkdir(parents=True)
        _clip(partial, frames=4)
        await db.jobs.cancel(job.id)
        note = "CLIP reads 77 tokens of a prompt; it did not read the end of the prompt: “…8k”"
        await db.leases.acknowledge_cancel(job.id, claimed.attempt, OWNER, artifacts=[str(partial)], notes=[note])
        async with fake.run_client(make_bot(tmp_path, fake)):
            notice = await fake.wait_for_message(fake.channel.id, lambda m: "was cancelled" in m.content)
            await delivered(db, job.id)
        assert "what it finished" in notice.content and f"<@{fake.member.id}>" in notice.content
        assert f"\n• {note}" in notice.content  # the engine's notes on what it finished
        (tmp_path / "got.mp4").write_bytes(notice.files[f"{job.id}.mp4"])
        assert probe_video(tmp_path / "got.mp4").frames == 4
    run(body, tmp_path)


def test_preset_names_autocomplete_on_animate_and_study(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.presets.save(fake.guild.id, "misty-forest", json.dumps({"tv_scale": 100}), 1,
                              owner_id=fake.member.id)
        await db.presets.save(fake.guild.id, "calm", json.dumps({"tv_scale": 1}), 1, owner_id=fake.member.id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            for command in ("animate", "study", "disco"):
                rec = await fake.autocomplete(command, {"prompt": "a", "preset": "mis"}, "preset")
                await fake.wait_for(lambda: fake.callbacks_for(rec.id))
                choices = fake.callbacks_for(rec.id)[0].data["choices"]
                assert [c["value"] for c in choices] == ["misty-forest"], (command, choices)
    run(body, tmp_path)
