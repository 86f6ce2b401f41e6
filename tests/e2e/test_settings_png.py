"""`/disco settings_file:` with a PNG the bot posted, through the loopback Discord: the job
takes the settings and seed the PNG carries, the typed prompt wins and the echo names the
file's; a re-encoded copy or a photo is refused with the rule and the fix, nothing queued."""
from __future__ import annotations

import json

from PIL import Image

from engine.media.files import save_png
from storage import Database
from tests.support.bot import make_bot, queue_job, run
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
