"""A member's second pass over jobs that outlive their channel or the bot: the real DiscoBot
against the loopback Discord, jobs driven through storage's engine API (claim, progress,
complete), as the engine does it.

A result whose channel was deleted is given up, not lost: /job show and /history say so in
words a member understands and name the way to get it (📤 Show, which posts it where it is
clicked). An animation never carries GoBig: it enlarges stills only, so 🎞 on a GoBig result
and a typed gobig=true leave it out with a note instead of echoing an enlargement that no frame
gets."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from commands.message_image import PAINT_MENU
from storage import Database
from tests.e2e.test_message_menus import picture, refusal
from tests.support.bot import (
    OWNER,
    answered,
    click,
    delivered,
    finish,
    has_png,
    last_answer,
    make_bot,
    queue_animation,
    queue_job,
    run,
)
from tests.support.fakediscord import FakeDiscord
from tests.support.fakediscord.models import BOT_PERMISSIONS, Perm


def test_a_result_whose_channel_was_deleted_is_explained_and_shown_again(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        fake.guild.channels.remove(fake.channel)  # deleted while the bot was away
        async with fake.run_client(make_bot(tmp_path, fake)):
            await delivered(db, job_id, 15.0, state="abandoned")
        fake.guild.channels.append(fake.channel)  # the member asks in a channel that exists
        async with fake.run_client(make_bot(tmp_path, fake)):
            shown = await answered(fake, await fake.slash("job show", {"id": job_id}))
            assert "abandoned" not in shown.content, shown.content
            assert "result: not posted" in shown.content and "channel" in shown.content, shown.content
            assert "/history" in shown.content and "📤 Show" in shown.content, shown.content
            page = await answered(fake, await fake.slash("history"))
            assert "not posted" in page.embeds[0]["description"], page.embeds[0]
            _, posted = await click(fake, page.id, f"disco:show:{job_id}")
            assert posted.content.startswith(f"Posted job `{job_id}` here"), posted.content
            assert any(has_png(m) for m in fake.messages_in(fake.channel.id))
    run(body, tmp_path)


async def _finish_at(db: Database, tmp_path: Path, job_id: str, side: int) -> None:
    """Play the engine: complete `job_id` with one side×side PNG (a GoBig result is twice its spec's size)."""
    job = await db.leases.claim(OWNER)
    assert job.id == job_id
    path = tmp_path / f"{job_id}.png"
    Image.new("RGB", (side, side), (10, 200, 30)).save(path)
    ref = await db.blobs.put(path.read_bytes(), "out_0.png", job_id=job_id, role="output", fence=(job.attempt, OWNER))
    await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[ref], gpu_seconds=1.0)


def test_an_animation_leaves_gobig_out_with_a_note(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=10)
        still = await queue_job(db, fake)
        await finish(db, tmp_path, still)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, lambda m: f"disco:gobig:{still}:0" in m.custom_ids)
            await click(fake, result.id, f"disco:gobig:{still}:0")
            (enlarged,) = [j for j in await db.jobs.list() if j.parent_job_id == still]
            await _finish_at(db, tmp_path, enlarged.id, 128)
            big = await fake.wait_for_message(fake.channel.id,
                                              lambda m: f"disco:animate:{enlarged.id}:0" in m.custom_ids)
            _, animated = await click(fake, big.id, f"disco:animate:{enlarged.id}:0")
            typed = await answered(fake, await fake.slash("animate", {"prompt": "a lighthouse", "frames": 2,
                                                                       "settings": "gobig=true"}))
        for answer in (animated, typed):
            text = answer.content.replace("\\", "")
            assert text.startswith("**Queued**") and "GoBig 2×" not in text and "gobig = " not in text, text
            assert "gobig ignored: GoBig enlarges still images" in text, text
        animations = [j for j in await db.jobs.list() if j.kind == "animation"]
        assert len(animations) == 2
        for job in animations:
            assert json.loads(job.spec_json)["render"]["gobig"] is False
    run(body, tmp_path)


def test_job_show_keeps_the_result_link_when_the_engine_left_its_most_and_longest_notes(tmp_path):
    from storage.jobs import MAX_NOTE_CHARS, MAX_RESULT_NOTES

    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        job = await db.leases.claim(OWNER)
        notes = [f"note {k}: " + "the prompt_* setting was long " * 20 for k in range(MAX_RESULT_NOTES)]
        notes = [note[:MAX_NOTE_CHARS] for note in notes]
        path = tmp_path / "out_0.png"
        Image.new("RGB", (64, 64), "red").save(path)
        ref = await db.blobs.put(path.read_bytes(), "out_0.png", job_id=job_id, role="output",
                                 fence=(job.attempt, OWNER))
        await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[ref], gpu_seconds=1.0, notes=notes)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            await delivered(db, job_id)
            shown = await answered(fake, await fake.slash("job show", {"id": job_id}))
        assert len(shown.content) <= 2000
        assert f"/{result.id}" in shown.content, shown.content[-300:]  # the link to the result survives
        assert "note 0:" in shown.content and "more notes on the result" in shown.content
    run(body, tmp_path)


def test_gobig_of_an_image_over_the_servers_pixel_limit_is_refused_not_shrunk_and_enlarged_back(tmp_path):
    """⬆ on a GoBig result at the server's size limit: the source would be shrunk to the limit
    first, so the member would pay for every tile to get the same size back. Refused instead."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=10, max_pixels=64 * 64)
        still = await queue_job(db, fake)
        await finish(db, tmp_path, still)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, lambda m: f"disco:gobig:{still}:0" in m.custom_ids)
            _, first = await click(fake, result.id, f"disco:gobig:{still}:0")
            assert first.content.startswith("**Queued**") and "GoBig 2× → 128×128" in first.content, first.content
            (enlarged,) = [j for j in await db.jobs.list() if j.parent_job_id == still]
            await _finish_at(db, tmp_path, enlarged.id, 128)
            big = await fake.wait_for_message(fake.channel.id, lambda m: f"disco:gobig:{enlarged.id}:0" in m.custom_ids)
            _, again = await click(fake, big.id, f"disco:gobig:{enlarged.id}:0")
        text = again.content.replace("\\", "")
        assert text.startswith("**Not queued:**") and "128×128" in text, text
        assert "max_pixels" in text and "4,096" in text and "an admin" in text, text
        assert [j.id for j in await db.jobs.list() if j.parent_job_id == enlarged.id] == []
    run(body, tmp_path)


def test_a_study_leaves_gobig_out_and_refuses_axes_that_draw_identical_cells(tmp_path):
    """A study's cells are rendered, never enlarged, and previews or in-between saves do not
    change an image: such axes would bill n identical cells."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=10)
        async with fake.run_client(make_bot(tmp_path, fake)):
            fixed = await last_answer(fake, await fake.slash("study", {"prompt": "a lighthouse", "x": "tv_scale=1,2",
                                                                     "settings": "gobig=true"}))
            refused = {}
            for axis in ("gobig=true,false", "gobig_scale=2,3", "display_rate=1,2", "intermediate_saves=1,2"):
                refused[axis] = await last_answer(fake, await fake.slash("study", {"prompt": "a lighthouse", "x": axis}))
        text = fixed.content.replace("\\", "")
        assert text.startswith("**Queued**") and "GoBig 2×" not in text and "gobig = " not in text, text
        assert "gobig ignored: GoBig enlarges still images" in text, text
        (study,) = await db.jobs.list()
        assert json.loads(study.spec_json)["base"]["gobig"] is False
        for axis, answer in refused.items():
            words = answer.content.replace("\\", "")
            assert answer.ephemeral and words.startswith("**Not queued:**"), (axis, words)
            assert f"{axis.partition('=')[0]} cannot be varied" in words, (axis, words)
    run(body, tmp_path)


def test_a_study_cancelled_part_way_posts_the_grid_of_its_finished_cells(tmp_path):
    """What the engine hands back for a cancelled study (its partial grid, as a blob) reaches
    the member as "was cancelled … Here is what it finished" with the grid and the study JSON."""
    from engine.spec.render import SCHEMA_VERSION, RenderSpec
    from engine.spec.study import build_study
    from storage import JobRequest
    from tests.support.bot import FAST_DEFAULTS

    async def body(fake: FakeDiscord, db: Database) -> None:
        base = RenderSpec.from_dict({**FAST_DEFAULTS, "text_prompts": "a lighthouse", "width": 64, "height": 64,
                                     "steps": 4, "seed": 5})
        study = build_study(base, "tv_scale=1,2,3")
        job = await db.jobs.enqueue(JobRequest(
            guild_id=fake.guild.id, channel_id=fake.channel.id, user_id=fake.member.id, kind="study",
            spec_json=study.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64,
            height=64, steps=4, frames=study.n_cells, seed=5))
        claimed = await db.leases.claim(OWNER)
        grid = tmp_path / "partial_grid.png"
        Image.new("RGB", (200, 90), "white").save(grid)
        ref = await db.blobs.put(grid.read_bytes(), "partial_grid.png", job_id=job.id, role="output",
                                 fence=(claimed.attempt, OWNER))
        await db.jobs.cancel(job.id)
        await db.leases.acknowledge_cancel(job.id, claimed.attempt, OWNER, artifacts=[ref])
        async with fake.run_client(make_bot(tmp_path, fake)):
            notice = await fake.wait_for_message(fake.channel.id, lambda m: "was cancelled" in m.content)
            await delivered(db, job.id)
        assert "Here is what it finished" in notice.content and f"<@{fake.member.id}>" in notice.content
        assert f"{job.id}_grid.png" in notice.files and f"{job.id}_study.json" in notice.files
    run(body, tmp_path)


def _button(message, custom_id: str) -> dict:
    found = []

    def walk(nodes):
        for node in nodes:
            if node.get("custom_id") == custom_id:
                found.append(node)
            walk(node.get("components", []))
    walk(message.components)
    return found[0]


def test_history_shows_a_cancelled_animation_again_with_the_frames_it_finished(tmp_path):
    """The frames a cancelled animation finished were posted once; a member who missed that
    post (its channel deleted, the message lost) gets them again from /history's 📤 Show."""
    from engine.media.video import encode_mp4, probe_video

    async def body(fake: FakeDiscord, db: Database) -> None:
        job = await queue_animation(db, fake)
        claimed = await db.leases.claim(OWNER)
        frames = [np.full((64, 64, 3), 40 * k, dtype=np.uint8) for k in range(3)]
        partial = encode_mp4(frames, tmp_path / "partial.mp4", fps=12)
        ref = await db.blobs.put(partial.read_bytes(), "partial.mp4", job_id=job.id, role="output",
                                 fence=(claimed.attempt, OWNER))
        await db.jobs.cancel(job.id)
        await db.leases.acknowledge_cancel(job.id, claimed.attempt, OWNER, artifacts=[ref])
        async with fake.run_client(make_bot(tmp_path, fake)):
            await fake.wait_for_message(fake.channel.id, lambda m: "was cancelled" in m.content)
            await delivered(db, job.id)
            page = await answered(fake, await fake.slash("history"))
            assert not _button(page, f"disco:show:{job.id}").get("disabled"), page.components
            _, answer = await click(fake, page.id, f"disco:show:{job.id}")
            assert answer.content.startswith(f"Posted job `{job.id}` here"), answer.content
            again = fake.messages_in(fake.channel.id)[-1]
        assert "Shown again from /history" in again.content and "Here is what it finished" in again.content
        (tmp_path / "again.mp4").write_bytes(again.files[f"{job.id}.mp4"])
        assert probe_video(tmp_path / "again.mp4").frames == 3
    run(body, tmp_path)


def test_gobig_of_image_2_of_3_enlarges_that_image_with_the_seed_it_was_made_with(tmp_path):
    from engine.spec.render import SCHEMA_VERSION, RenderSpec, batch_image_seed
    from storage import JobRequest
    from tests.support.bot import FAST_DEFAULTS

    async def body(fake: FakeDiscord, db: Database) -> None:
        spec = RenderSpec.from_dict({**FAST_DEFAULTS, "text_prompts": "a lighthouse", "width": 64, "height": 64,
                                     "steps": 8, "seed": 11, "n_batches": 3})
        job = await db.jobs.enqueue(JobRequest(
            guild_id=fake.guild.id, channel_id=fake.channel.id, user_id=fake.member.id, kind="still",
            spec_json=spec.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64,
            steps=8, seed=11))
        claimed = await db.leases.claim(OWNER)
        refs = []
        for k in range(3):
            path = tmp_path / f"out_{k}.png"
            Image.new("RGB", (64, 64), (80 * k, 20, 200 - 60 * k)).save(path)
            refs.append(await db.blobs.put(path.read_bytes(), path.name, job_id=job.id, role="output",
                                           fence=(claimed.attempt, OWNER)))
        await db.leases.complete(job.id, claimed.attempt, OWNER, artifacts=refs, gpu_seconds=1.0)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, lambda m: f"disco:gobig:{job.id}:1" in m.custom_ids)
            _, echo = await click(fake, result.id, f"disco:gobig:{job.id}:1")
            assert echo.content.startswith("**Queued**") and "GoBig 2× → 128×128" in echo.content, echo.content
            (enlarge,) = [j for j in await db.jobs.list() if j.parent_job_id == job.id]
            shown = await answered(fake, await fake.slash("job show", {"id": enlarge.id}))
        spec = json.loads(enlarge.spec_json)
        assert await db.blobs.get(spec["gobig_init"]) == await db.blobs.get(refs[1])
        assert spec["seed"] == enlarge.seed == batch_image_seed(11, 1) and spec["n_batches"] == 1
        assert enlarge.parent_image == 1 and "image 2" in shown.content, shown.content
    run(body, tmp_path)


def test_a_job_whose_result_the_bot_could_not_post_here_is_refused_unless_it_goes_by_dm(tmp_path):
    """Slash commands and menus work where the bot may not post (an admin's channel overrides):
    the job would run and its result be given up, so it is refused with the fix, before any form;
    a member whose results come by DM is served there."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        fake.guild.member(fake.bot_user.id).permissions = BOT_PERMISSIONS & ~Perm.ATTACH_FILES
        async with fake.run_client(make_bot(tmp_path, fake)):
            refused = await refusal(fake, await fake.slash("disco", {"prompt": "a barn"}))
            menu = await fake.message_menu(PAINT_MENU, message.id)
            no_form = await refusal(fake, menu)
            await db.users.set_notify(fake.member.id, "dm")
            queued = await answered(fake, await fake.slash("disco", {"prompt": "a barn"}))
        for text in (refused, no_form):
            assert text.startswith(
                "**Not queued:** I may not post messages or files in this channel, so your result could not be "
                "shown here (rule: bot_can_post); use a channel where I can post, ask an admin to let me Send "
                "Messages and Attach Files here, or choose /disco-settings notify:dm"), text
        assert menu.modal is None
        assert queued.content.startswith("**Queued**") and len(await db.jobs.list()) == 1
    run(body, tmp_path)
