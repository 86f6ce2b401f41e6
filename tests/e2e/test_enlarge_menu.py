"""Apps → "Enlarge (GoBig)" end to end: the real DiscoBot against the loopback Discord, which sends
the target message whole with the menu and hands out members' messages without attachments
anywhere else. Nothing renders: the queued job's spec is what is checked.

The menu keeps its form and opens it; the submit, on a restarted bot, downloads the image the menu
saw and queues a still with gobig on, the image as gobig_init and the image's own size (in DD's
multiples of 64) as its size. On a result of the bot's it queues what ⬆ queues for that image (the
job's settings, the image's seed, its kept PNG), the form showing the job's prompt. Refused with the
rule and the fix: an image over the server's max_pixels (before the form when Discord measured it,
else on submit), an enlargement over GoBig's bound, an empty prompt, a size chosen in the form, an
image number out of range, a message without a still image.
"""
from __future__ import annotations

import io
import json
import re

from PIL import Image

from bot.enlarge import FORM_FILE, FORM_PREFIX
from commands.message_image import ENLARGE_MENU
from engine.spec.gobig import MAX_GOBIG_PIXELS, gobig_tiles
from engine.spec.render import RenderSpec, batch_image_seed
from storage import Database, blob_ref
from tests.e2e.test_message_menus import finish_with_images, message_fetches, refusal
from tests.support.bot import answered, delivered, form_values, job_id_in, make_bot, queue_job, run
from tests.support.fakediscord import FakeDiscord, FakeFile


def png(width: int, height: int, color=(30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def image_file(name: str, width: int, height: int, *, measured: bool = True, color=(30, 120, 200)) -> FakeFile:
    """A PNG attachment; `measured`: whether Discord sent its width and height (none for HEIC)."""
    sizes = {"width": width, "height": height} if measured else {}
    return FakeFile(name, png(width, height, color), "image/png", **sizes)


async def open_form(fake: FakeDiscord, message_id: int, **kwargs):
    opened = await fake.message_menu(ENLARGE_MENU, message_id, **kwargs)
    assert (await fake.wait_for_callback(opened)).type == 9  # the form is the first answer
    return opened


async def spec_of(db: Database, echo) -> dict:
    return json.loads((await db.jobs.get(job_id_in(echo.content))).spec_json)


def test_the_form_opens_and_its_submit_after_a_restart_queues_a_gobig_job_of_the_image_at_its_size(tmp_path):
    photo = image_file("photo.png", 1000, 750)

    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=5)
        message = await fake.user_message(fake.channel.id, fake.member, "my photo", [photo])
        tiny = await fake.user_message(fake.channel.id, fake.member, "", [image_file("icon.png", 40, 24)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            opened = await open_form(fake, message.id)
            small = await open_form(fake, tiny.id)
        custom_id = opened.modal["custom_id"]
        assert re.fullmatch(re.escape(FORM_PREFIX) + "[0-9a-f]{64}", custom_id) and len(custom_id) <= 100
        assert opened.modal["title"] == ENLARGE_MENU and form_values(opened.modal) == {"prompt": "", "settings": ""}
        kept = json.loads(await db.blobs.get(blob_ref(custom_id.removeprefix(FORM_PREFIX), FORM_FILE)))
        assert kept["kind"] == "enlarge_form" and kept["attachment"]["url"] == message.attachments[0].url
        assert "job" not in kept  # a member's image: no job of the bot's behind it
        async with fake.run_client(make_bot(tmp_path, fake)):  # a fresh process: no form in memory
            echo = await answered(fake, await fake.submit_modal(
                opened, {"prompt": "a harbour at dusk, oil painting", "settings": "gobig_scale=3; steps=60"}))
            tiny_echo = await answered(fake, await fake.submit_modal(small, {"prompt": "an icon"}))
        assert echo.content.startswith("**Queued**") and not echo.ephemeral, echo.content
        spec = await spec_of(db, echo)
        assert spec["gobig"] is True and await db.blobs.get(spec["gobig_init"]) == photo.data
        assert (spec["width"], spec["height"], spec["gobig_scale"], spec["n_batches"]) == (960, 704, 3, 1)
        assert spec["steps"] == 60 and spec["text_prompts"][0]["text"] == "a harbour at dusk, oil painting"
        tiles = len(gobig_tiles(RenderSpec.from_dict(spec)))
        assert "GoBig 3× → 2880×2112" in echo.content
        assert (f"Enlarging photo.png (1000×750, taken as 960×704: DD's sizes are multiples of 64) 3× to "
                f"2880×2112: {tiles} tiles of 512×512, each re-rendered with the prompt over the last 24 of 60 "
                f"steps (gobig_skip_ratio 0.6). More tiles cost more GPU time; gobig_scale=2 or a smaller image "
                f"makes fewer.") in echo.content.replace("\\", ""), echo.content
        # A tiny image is enlarged too: from DD's smallest size.
        tiny_spec = await spec_of(db, tiny_echo)
        assert (tiny_spec["width"], tiny_spec["height"]) == (64, 64) and tiny_spec["gobig_init"]
        assert "Enlarging icon.png (40×24, taken as 64×64: DD's sizes are multiples of 64, at least 64) 2× to 128×128:" \
            in tiny_echo.content, tiny_echo.content
        assert message_fetches(fake) == []  # the image came with the menu, not a fetch of the message
    run(body, tmp_path)


def test_the_form_picks_one_of_several_images_and_bounds_the_number(tmp_path):
    files = [image_file("a.png", 64, 64, color=(200, 0, 0)), image_file("b.png", 128, 64, color=(0, 200, 0)),
             FakeFile("notes.txt", b"hello", "text/plain")]

    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "", files)
        async with fake.run_client(make_bot(tmp_path, fake)):
            opened = await open_form(fake, message.id)
            assert form_values(opened.modal) == {"prompt": "", "settings": "", "image": ""}
            downloads = len(fake.downloads)
            out_of_range = await refusal(fake, await fake.submit_modal(opened, {"prompt": "a barn", "image": "3"}))
            assert len(fake.downloads) == downloads  # refused before anything was downloaded
            echo = await answered(fake, await fake.submit_modal(await open_form(fake, message.id),
                                                                {"prompt": "a barn", "image": "2"}))
        assert out_of_range.startswith(f"**Not queued:** {ENLARGE_MENU}: image '3' is not one of this message's 2 "
                                       f"images (rule: enlarge_image_number) — type 1 to 2"), out_of_range
        spec = await spec_of(db, echo)
        assert await db.blobs.get(spec["gobig_init"]) == files[1].data and (spec["width"], spec["height"]) == (128, 64)
        assert ("Used attachment 2 of 3, b.png (the message's still image number 2; the form's Image field picks "
                "another).") in echo.content.replace("\\", ""), echo.content
    run(body, tmp_path)


def test_an_image_over_the_servers_max_pixels_is_refused_before_the_form_or_on_submit(tmp_path):
    """Discord measured it: no form opens. Unmeasured (a HEIC, say): the download is measured."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_pixels=128 * 128)
        measured = await fake.user_message(fake.channel.id, fake.member, "", [image_file("big.png", 200, 100)])
        unmeasured = await fake.user_message(fake.channel.id, fake.member, "",
                                             [image_file("big.png", 200, 100, measured=False)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            before = await fake.message_menu(ENLARGE_MENU, measured.id)
            refused_before = await refusal(fake, before)
            on_submit = await refusal(fake, await fake.submit_modal(await open_form(fake, unmeasured.id),
                                                                    {"prompt": "a barn"}))
        assert before.modal is None
        for text in (refused_before, on_submit):
            assert text.startswith(f"**Not queued:** {ENLARGE_MENU}: big.png is 200×100 = 20,000 pixels, over this "
                                   f"server's 16,384 pixels per image (rule: max_pixels), and GoBig starts from the "
                                   f"image at a size the server allows — enlarge a smaller image, or ask an admin to "
                                   f"raise max_pixels"), text
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_an_enlargement_over_gobigs_bound_an_empty_prompt_and_a_chosen_size_are_refused(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_pixels=2048 * 2048)
        big = await fake.user_message(fake.channel.id, fake.member, "", [image_file("big.png", 1408, 1408)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            too_big = await refusal(fake, await fake.submit_modal(
                await open_form(fake, big.id), {"prompt": "a barn", "settings": "gobig_scale=3"}))
            forms = [await open_form(fake, big.id) for _ in range(3)]
            empty = await refusal(fake, await fake.submit_modal(forms[0], {"prompt": "  "}))
            sized = await refusal(fake, await fake.submit_modal(forms[1], {"prompt": "a barn", "settings": "width=512"}))
            shaped = await refusal(fake, await fake.submit_modal(forms[2], {"prompt": "a barn --ar 16:9"}))
        assert (f"gobig_scale: the enlarged image would be 4224×4224 = 17,842,176 pixels; at most "
                f"{MAX_GOBIG_PIXELS:,}") in too_big and "use a smaller gobig_scale" in too_big, too_big
        assert empty == ("**Not queued:** prompt is empty (rule: enlarge_field_required); write what the image shows: "
                         "GoBig re-renders each tile with it — or close the form"), empty
        for text, key in ((sized, "width"), (shaped, "aspect_ratio")):
            assert text.startswith(f"**Not queued:** {ENLARGE_MENU}: {key} is the image's own here (rule: "
                                   f"enlarge_size); GoBig starts from the image as it is"), text
            assert "set gobig_scale=3 for a larger result" in text
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_a_message_without_a_still_image_is_refused_with_where_to_attach_one(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        linked = await fake.user_message(fake.channel.id, fake.member, "https://example.com/cat.png")
        text = await fake.user_message(fake.channel.id, fake.member, "",
                                       [FakeFile("notes.txt", b"hello", "text/plain")])
        async with fake.run_client(make_bot(tmp_path, fake)):
            no_file = await refusal(fake, await fake.message_menu(ENLARGE_MENU, linked.id))
            not_image = await refusal(fake, await fake.message_menu(ENLARGE_MENU, text.id))
        assert no_file.startswith(f"**Not queued:** {ENLARGE_MENU}: this message has no attached image (rule: "
                                  f"menu_attachments_only)"), no_file
        assert no_file.endswith("attach the image to a message of your own instead"), no_file
        assert "(notes.txt (text/plain); rule: menu_still_image)" in not_image, not_image
        assert not_image.endswith("right-click a message with one, or attach one to a message of your own")
        assert await db.jobs.list() == [] and not fake.downloads
    run(body, tmp_path)


def test_on_a_result_of_the_bots_it_queues_what_the_gobig_button_does_with_the_jobs_prompt_shown(tmp_path):
    """The form shows the job's prompt; left as shown, the job is ⬆'s for that image (its parent,
    its settings, the image's seed, the kept PNG); a new prompt replaces the job's."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=5)
        job_id = await queue_job(db, fake, seed=7)
        images = await finish_with_images(db, tmp_path, job_id, [(200, 0, 0), (0, 200, 0), (0, 0, 200)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            await delivered(db, job_id, 15.0)
            result = await fake.wait_for_message(fake.channel.id, lambda m: any("_grid." in a.filename
                                                                               for a in m.attachments))
            opened = await open_form(fake, result.id)
            shown = form_values(opened.modal)
            assert shown == {"prompt": "a lighthouse", "settings": "", "image": ""}
            same = await answered(fake, await fake.submit_modal(opened, {**shown, "image": "2"}))
            new = await answered(fake, await fake.submit_modal(await open_form(fake, result.id),
                                                               {"prompt": "a lighthouse in fog", "image": "3"}))
        job = await db.jobs.get(job_id_in(same.content))
        spec = json.loads(job.spec_json)
        assert job.parent_job_id == job_id and spec["gobig"] is True and spec["n_batches"] == 1
        assert spec["seed"] == batch_image_seed(7, 1) and await db.blobs.get(spec["gobig_init"]) == images[1]
        assert [p["text"] for p in spec["text_prompts"]] == ["a lighthouse"] and (spec["width"], spec["height"]) == \
            (64, 64)
        assert spec["steps"] == 8  # the job's own settings, not the server's defaults
        assert f"Enlarging image 2 of job {job_id} (64×64) 2× to 128×128: " in same.content, same.content
        spec = await spec_of(db, new)
        assert [p["text"] for p in spec["text_prompts"]] == ["a lighthouse in fog"]
        assert await db.blobs.get(spec["gobig_init"]) == images[2] and spec["seed"] == batch_image_seed(7, 2)
    run(body, tmp_path)


def test_no_form_opens_while_the_server_is_paused_or_where_it_takes_no_renders(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "", [image_file("pic.png", 64, 64)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            await db.guilds.pause_intake(fake.guild.id, "new GPU tonight")
            paused = await fake.message_menu(ENLARGE_MENU, message.id)
            paused_text = await refusal(fake, paused)
            await db.guilds.resume_intake(fake.guild.id)
            await db.guilds.allow_channel(fake.guild.id, fake.guild.channels[1].id)
            elsewhere = await fake.message_menu(ENLARGE_MENU, message.id)
            elsewhere_text = await refusal(fake, elsewhere)
        assert paused.modal is None and elsewhere.modal is None
        assert "this server's admins paused new renders (new GPU tonight); try again later" in paused_text
        assert "renders are not allowed in this channel" in elsewhere_text
        assert await db.jobs.list() == [] and not fake.downloads
    run(body, tmp_path)
