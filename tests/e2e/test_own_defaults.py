"""A member's own defaults (`/disco-settings defaults:` and `reset:`) end to end: the real bot (no
engine) against the loopback Discord and the real SQLite file. Set, refused, applied to /disco
over the server's defaults and under the member's options and presets, named in the echo, left
out of a re-run and the 📋 recipe of an older job, taken by /animate and /study too, lowered by
the server's limits, a model the server does not allow refused naming them, shown by
/disco-help, reset one by one and all."""
from __future__ import annotations

import json

from storage import Database
from tests.support.bot import (
    FAST_DEFAULTS,
    click,
    delivered,
    finish,
    has_png,
    last_answer,
    make_bot,
    queue_job,
    run,
)
from tests.support.fakediscord import FakeDiscord


async def settings(fake: FakeDiscord, options: dict | None = None) -> str:
    message = await last_answer(fake, await fake.slash("disco-settings", options))
    assert message.ephemeral, message.content
    return message.content.replace("\\", "")


async def disco(fake: FakeDiscord, options: dict) -> str:
    message = await last_answer(fake, await fake.slash("disco", {"prompt": "a lighthouse", **options}))
    return message.content.replace("\\", "")


async def newest_spec(db: Database) -> dict:
    return json.loads((await db.jobs.list(limit=1))[0].spec_json)


async def admin(fake: FakeDiscord, command: str, options: dict) -> str:
    rec = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.admin, f"disco-admin {command}", options)
    return (await last_answer(fake, rec)).content.replace("\\", "")


def test_own_defaults_apply_under_the_members_choices_and_are_reset(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=10)
        old = await queue_job(db, fake)  # queued before the member had defaults (steps 8, DD's eta)
        await finish(db, tmp_path, old)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            await delivered(db, old)

            shown = await settings(fake)
            assert "notify: **channel**" in shown and "defaults: **none**" in shown
            saved = await settings(fake, {"defaults": "steps=30; eta=0.5"})
            assert saved.startswith("Saved.") and "`eta=0.5; steps=30`" in saved
            assert "steps=40" in await settings(fake, {"defaults": "steps=40"})  # replaces, keeps eta
            assert await db.users.defaults(fake.member.id) == {"steps": 40, "eta": 0.5}
            for typed, why in (("seed=5", "seed cannot be a default"),
                               ("init_image=/etc/passwd", "images come from attachments only"),
                               ("text_prompts=oil painting", "the prompt you type replaces it in every job"),
                               ("translation_x=2", "type it in /animate settings: each time"),
                               ("steps=0", "steps"), ("stepz=30", "stepz"),
                               ("skip_steps=60", "together with your other defaults")):
                refused = await settings(fake, {"defaults": typed})
                assert why in refused and "Saved" not in refused, (typed, refused)
            assert await db.users.defaults(fake.member.id) == {"steps": 40, "eta": 0.5}
            info = (await last_answer(fake, await fake.slash("disco-info"))).content.replace("\\", "")
            assert "Your own defaults (`/disco-settings`, over these): `eta=0.5; steps=40`" in info, info

            queued = await disco(fake, {})
            assert queued.startswith("**Queued**") and "from your defaults: eta=0.5, steps=40" in queued
            spec = await newest_spec(db)
            assert (spec["steps"], spec["eta"], spec["cutn_batches"]) == (40, 0.5, 1)  # server's kept too
            await disco(fake, {"steps": 20, "settings": "eta=0.2"})
            assert ((await newest_spec(db))["steps"], (await newest_spec(db))["eta"]) == (20, 0.2)
            assert "Saved" in (await last_answer(fake, await fake.slash(
                "preset save", {"name": "quick", "settings": "steps=12"}))).content
            await last_answer(fake, await fake.slash("preset use", {"name": "quick", "prompt": "a pier"}))
            assert ((await newest_spec(db))["steps"], (await newest_spec(db))["eta"]) == (12, 0.5)
            for command, options, part in (("animate", {"frames": 2}, "render"), ("study", {"x": "tv_scale=1,2"}, "base")):
                echo = (await last_answer(fake, await fake.slash(command, {"prompt": "a pier", **options}))).content
                assert "from your defaults: eta=0.5, steps=40" in echo.replace("\\", ""), (command, echo)
                assert ((await newest_spec(db))[part]["steps"], (await newest_spec(db))[part]["eta"]) == (40, 0.5)

            # An older job's re-run and recipe repeat that job, not today's defaults.
            rerun = (await last_answer(fake, await fake.slash("rerun", {"job": old}))).content
            assert rerun.startswith("**Queued**") and "your defaults" not in rerun
            assert ((await newest_spec(db))["steps"], (await newest_spec(db))["eta"]) == (8, 0.8)
            _, recipe = await click(fake, result.id, f"disco:recipe:{old}")
            assert "steps=8" in recipe.content and "eta=0.8" in recipe.content

            help_text = (await last_answer(fake, await fake.slash("disco-help", {"setting": "eta"}))).content
            assert "Your default (`/disco-settings`): `0.5`" in help_text

            rec = await fake.autocomplete("disco-settings", {"reset": ""}, "reset")
            await fake.wait_for(lambda: fake.callbacks_for(rec.id))
            assert [c["value"] for c in fake.callbacks_for(rec.id)[0].data["choices"]] == ["eta", "steps", "all"]
            assert "Removed `eta`" in await settings(fake, {"reset": "eta"})
            assert "is not one of your defaults" in await settings(fake, {"reset": "eta"})
            assert "**Unchanged:** a blank name is not one of your defaults (yours: steps)" in \
                await settings(fake, {"reset": " "})
            assert 'no setting given (rule: defaults); type them as key=value, e.g. "steps=150; eta=0.5"' in \
                await settings(fake, {"defaults": " "})
            assert await db.users.defaults(fake.member.id) == {"steps": 40}
            assert "Removed all your defaults" in await settings(fake, {"reset": "all"})
            assert "your defaults" not in await disco(fake, {})
            assert (await newest_spec(db))["steps"] == 250  # DD's again
        assert await db.users.defaults(fake.member.id) == {} and await db.users.notify(fake.member.id) == "channel"
    run(body, tmp_path)


def test_the_server_still_rules_over_own_defaults(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            await admin(fake, "limits set", {"max_steps": 25})
            await admin(fake, "models allow", {"kind": "diffusion", "names": "512x512_diffusion_uncond_finetune_008100"})
            saved = await settings(fake, {"defaults": "steps=30; diffusion_model=256x256_diffusion_uncond"})
            assert "Here, this server's limits change them: steps 30 → 25" in saved
            assert "Here, jobs that keep them are refused" in saved and "from your own defaults" in saved

            refused = await disco(fake, {})
            assert refused.startswith("**Not queued:**") and "rule: allowed_models" in refused
            assert "from your own defaults" in refused and "/disco-settings reset:diffusion_model" in refused
            assert not await db.jobs.list()
            queued = await disco(fake, {"model": "512x512_diffusion_uncond_finetune_008100"})
            assert queued.startswith("**Queued**") and "steps 30 → 25" in queued
            assert (await newest_spec(db))["steps"] == 25
            assert (await newest_spec(db))["cutn_batches"] == FAST_DEFAULTS["cutn_batches"]  # the server's kept
    run(body, tmp_path)


def test_the_recipe_of_a_job_made_with_own_defaults_writes_them_out(tmp_path):
    """📋 is copied and shared: a member's own defaults are written out, so the recipe gives the
    same settings to a member without them (and back to its author, whose defaults it repeats)."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.users.set_defaults(fake.member.id, {"steps": 40, "eta": 0.5})
        async with fake.run_client(make_bot(tmp_path, fake)):
            queued = await disco(fake, {})
            job_id = (await db.jobs.list(limit=1))[0].id
            await finish(db, tmp_path, job_id)
            result = await fake.wait_for_message(fake.channel.id, has_png)
            _, recipe = await click(fake, result.id, f"disco:recipe:{job_id}")
        assert "from your defaults: eta=0.5, steps=40" in queued
        assert "steps=40" in recipe.content and "eta=0.5" in recipe.content, recipe.content
    run(body, tmp_path)
