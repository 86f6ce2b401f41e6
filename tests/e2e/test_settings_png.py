"""`/disco settings_file:` with a PNG the bot posted, through the loopback Discord: the job
takes the settings and seed the PNG carries, the typed prompt wins and the echo names the
file's; a re-encoded copy or a photo is refused with the rule and the fix, nothing queued."""
from __future__ import annotations

import json

from PIL import Image

from engine.media.files import save_png
from storage import Database
from tests.support.bot import make_bot, queue_animation, queue_job, run
from tests.support.fakediscord import FakeDiscord, FakeFile
from tests.support.media import encoded, picture


def test_disco_takes_the_settings_and_seed_a_result_png_carries(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        earlier = await db.jobs.get(await queue_job(db, fake, seed=4321))
        png = save_png(Image.new("RGB", (64, 64), (20, 90, 200)), tmp_path / "disco_0.png",
                       {"disco_settings": earlier.spec_json, "Description": "a lighthouse"}).read_bytes()
        async with fake.run_client(make_bot(tmp_path, fake)):
            for name, data, kind in [("photo.png", encoded(picture(), "PNG"), "image/png"),
                                     ("disco_0.jpg", encoded(picture(), "JPEG"), "image/jpeg")]:
                refused = await fake.slash("disco", {"prompt": "a castle",
                                                     "settings_file": FakeFile(name, data, kind, width=40, height=20)})
                await fake.wait_for(lambda: refused.followup_ids)
                answer = fake.message(refused.followup_ids[-1])
                assert answer.ephemeral and answer.content.startswith("**Not queued:**"), answer.content
                assert "attach the PNG the bot posted (not a screenshot), or a settings.txt" in answer.content
            rec = await fake.slash("disco", {"prompt": "a castle", "settings_file": FakeFile(
                "disco_0.png", png, "image/png", width=64, height=64)})
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.message(rec.followup_ids[0]).content.replace("\\", "")
            assert echo.startswith("**Queued**"), echo
            assert "prompt: yours replaces the settings file's 'a lighthouse'" in echo
        jobs = await db.jobs.list()
        assert len(jobs) == 2  # the refusals queued nothing
        again = next(job for job in jobs if job.id != earlier.id)
        spec = json.loads(again.spec_json)
        assert (again.seed, again.steps, again.width, again.height) == (4321, 8, 64, 64)
        assert [p["text"] for p in spec["text_prompts"]] == ["a castle"]
    run(body, tmp_path)


def test_study_and_animate_take_a_result_png_and_animate_a_frame_png(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        earlier = await db.jobs.get(await queue_job(db, fake, seed=4321))
        still = save_png(Image.new("RGB", (64, 64)), tmp_path / "disco_0.png",
                         {"disco_settings": earlier.spec_json}).read_bytes()
        animation = await queue_animation(db, fake)
        frame = save_png(Image.new("RGB", (64, 64)), tmp_path / "0002.png",
                         {"disco_animation": animation.spec_json, "disco_frame": "2"}).read_bytes()
        for job_id in (earlier.id, animation.id):  # only their PNGs matter; they hold no queue places
            await db.jobs.cancel(job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            for command, options, png in [
                    ("study", {"prompt": "a lighthouse", "x": "clip_guidance_scale=1000,8000"}, still),
                    ("animate", {"prompt": "a lighthouse"}, frame),
                    ("disco", {"prompt": "a lighthouse"}, frame)]:
                rec = await fake.slash(command, {**options, "settings_file": FakeFile(
                    "result.png", png, "image/png", width=64, height=64)})
                await fake.wait_for(lambda: rec.followup_ids)
                answers = [fake.message(i).content.replace("\\", "") for i in rec.followup_ids]
                if command == "disco":  # a frame's PNG carries an animation, not a still's settings
                    assert answers[-1].startswith("**Not queued:**") and "attach it to /animate" in answers[-1]
                else:
                    assert answers[0].startswith("**Queued**"), answers
        jobs = {job.kind: job for job in await db.jobs.list() if job.id not in (earlier.id, animation.id)}
        assert sorted(jobs) == ["animation", "study"]
        assert jobs["study"].seed == 4321 and jobs["study"].steps == 8
        assert (jobs["animation"].seed, jobs["animation"].frames) == (3, 10)
    run(body, tmp_path)
