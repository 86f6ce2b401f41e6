"""The message menus (right-click a message → Apps) end to end: the real DiscoBot against the
loopback Discord, which sends the target message in `data.resolved.messages` as Discord does,
and, as Discord does for a bot without the Message Content intent, hands out members' messages
without their attachments anywhere else. Nothing renders: the queued job's spec is what is
checked.

"Describe image" queues a describe job of the message's first still image; "Paint from this
image" keeps what its form needs and opens it, and the submit — on a restarted bot — downloads
the image the menu saw (the message is not fetched again) and queues a `/disco` still with it
as init_image and half of the steps skipped. Refused, with the rule and the fix, before anything
is queued: a message without attachments, one whose attachments are no still images, a message
deleted before the form is sent, an image Discord's CDN fails to hand over, a channel the server
does not render in, a form submitted elsewhere, by another member, or that the bot never kept.
"""
from __future__ import annotations

import io
import json
import re

from PIL import Image

from bot.cogs.apps import FORM_FILE, FORM_PREFIX
from commands.message_image import DESCRIBE_MENU, PAINT_MENU
from engine.media.still_formats import FORMAT_LIST
from storage import Database, blob_ref, parse_ref
from tests.support.bot import OWNER, answered, delivered, form_values, job_id_in, make_bot, queue_job, run
from tests.support.fakediscord import FakeDiscord, FakeFile
from tests.support.fakediscord.models import BOT_PERMISSIONS, Perm


def png(color=(30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buffer, "PNG")
    return buffer.getvalue()


def picture(name: str = "pic.png", color=(30, 120, 200)) -> FakeFile:
    return FakeFile(name, png(color), "image/png", width=64, height=64)


async def refusal(fake: FakeDiscord, rec) -> str:
    """The private answer to a menu or a submit that was refused."""
    def private():
        shown = [fake.message(i) for i in rec.followup_ids] + [fake.original_response(rec.id)]
        return next((m for m in shown if m is not None and m.ephemeral and m.content), None)
    message = await fake.wait_for(private, 15, "for the private refusal")
    return message.content.replace("\\", "")


async def open_form(fake: FakeDiscord, message_id: int, **kwargs):
    opened = await fake.message_menu(PAINT_MENU, message_id, **kwargs)
    assert (await fake.wait_for_callback(opened)).type == 9  # the form is the first answer
    return opened


def message_fetches(fake: FakeDiscord) -> list:
    """The bot's reads of channel messages (Discord would empty a member's attachments in them)."""
    return fake.requests_to("GET", "/channels/{cid}/messages/{mid}") + fake.requests_to("GET", "/channels/{cid}/messages")


def test_describe_image_queues_the_first_still_image_of_the_message(tmp_path):
    data = png()

    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "look",
                                          [FakeFile("notes.txt", b"hello", "text/plain"),
                                           FakeFile("pic.png", data, "image/png", width=64, height=64)])
        await db.users.set_defaults(fake.member.id, {"steps": 60, "eta": 0.4})
        async with fake.run_client(make_bot(tmp_path, fake)):
            echo = await answered(fake, await fake.message_menu(DESCRIBE_MENU, message.id))
        assert echo.content.startswith("**Queued**") and not echo.ephemeral, echo.content
        assert "Used attachment 2 of 2, pic.png (the message's first still image)." in echo.content
        # Nothing is painted: no placeholder prompt, settings or notes of a render (nor the member's defaults).
        assert "Describing the image with ViT-B-32::openai; the prompt it reads is posted here" in echo.content
        assert "an image to describe" not in echo.content and "skip" not in echo.content, echo.content
        assert "your defaults" not in echo.content and len(echo.content.splitlines()) == 3
        job = await db.jobs.get(job_id_in(echo.content))
        spec = json.loads(job.spec_json)
        assert spec["describe"] is True and await db.blobs.get(spec["init_image"]) == data
    run(body, tmp_path)


def test_paint_from_this_image_opens_a_form_and_its_submit_after_a_restart_queues_the_image(tmp_path):
    data = png()

    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "",
                                          [FakeFile("pic.png", data, "image/png", width=64, height=64)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            opened = await open_form(fake, message.id)
            again = await open_form(fake, message.id)
        custom_id = opened.modal["custom_id"]
        assert re.fullmatch(re.escape(FORM_PREFIX) + "[0-9a-f]{64}", custom_id) and len(custom_id) <= 100
        assert opened.modal["title"] == PAINT_MENU and form_values(opened.modal) == \
            {"prompt": "", "settings": "", "preset": ""}
        kept = json.loads(await db.blobs.get(blob_ref(custom_id.removeprefix(FORM_PREFIX), FORM_FILE)))
        assert (kept["guild"], kept["channel"], kept["message"], kept["user"]) == \
            (fake.guild.id, fake.channel.id, message.id, fake.member.user.id)
        assert kept["attachment"]["url"] == message.attachments[0].url
        async with fake.run_client(make_bot(tmp_path, fake)):  # a fresh process: no form in memory
            echo = await answered(fake, await fake.submit_modal(opened, {"prompt": "a lighthouse at dawn"}))
            chosen = await answered(fake, await fake.submit_modal(
                again, {"prompt": "a red barn --ar 16:9", "settings": "steps=40; skip_steps=8"}))
        assert echo.content.startswith("**Queued**") and not echo.ephemeral, echo.content
        job = await db.jobs.get(job_id_in(echo.content))
        spec = json.loads(job.spec_json)
        assert await db.blobs.get(spec["init_image"]) == data
        assert spec["text_prompts"][0]["text"] == "a lighthouse at dawn"
        assert spec["skip_steps"] == spec["steps"] // 2 > 0
        assert (f"Started from pic.png: skip_steps {spec['skip_steps']} of {spec['steps']} steps (half of them"
                in echo.content)
        # No size chosen: the painting is shaped like the (square) image, not the server's 1280×768.
        assert spec["width"] == spec["height"] and "the image's shape (64×64) → 960×960" in echo.content
        assert "Used attachment" not in echo.content  # one attachment: nothing to say
        spec = json.loads((await db.jobs.get(job_id_in(chosen.content))).spec_json)
        assert (spec["steps"], spec["skip_steps"]) == (40, 8)
        assert "skip_steps 8 of 40 steps (as you set it)." in chosen.content and spec["width"] > spec["height"]
        # The image came from the menu's interaction, not a fetch of the message.
        assert message_fetches(fake) == []
    run(body, tmp_path)


def test_the_submit_says_which_attachment_the_menu_picked(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "",
                                          [FakeFile("notes.txt", b"hello", "text/plain"), picture("b.png")])
        async with fake.run_client(make_bot(tmp_path, fake)):
            echo = await answered(fake, await fake.submit_modal(await open_form(fake, message.id),
                                                                {"prompt": "a barn"}))
        assert "Used attachment 2 of 2, b.png (the message's first still image)." in echo.content
        assert "Started from b.png:" in echo.content
    run(body, tmp_path)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def test_a_message_without_an_attached_still_image_is_refused_by_both_menus(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        linked = await fake.user_message(fake.channel.id, fake.member, "https://example.com/cat.png")
        video = await fake.user_message(fake.channel.id, fake.member, "",
                                        [FakeFile("clip.mp4", b"\0" * 64, "video/mp4")])
        gif = await fake.user_message(fake.channel.id, fake.member, "",
                                      [FakeFile("dance.gif", animated_gif(), "image/gif", width=64, height=64)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            # A GIF is a still format by its type; its bytes show the animation, refused as for /describe.
            animated = await refusal(fake, await fake.message_menu(DESCRIBE_MENU, gif.id))
            assert animated.startswith("**Not queued:** image: dance.gif is an animated GIF (3 frames)"), animated
            no_file = await refusal(fake, await fake.message_menu(DESCRIBE_MENU, linked.id))
            no_file_paint = await refusal(fake, await fake.message_menu(PAINT_MENU, linked.id))
            not_still = await refusal(fake, await fake.message_menu(PAINT_MENU, video.id))
            not_still_describe = await refusal(fake, await fake.message_menu(DESCRIBE_MENU, video.id))
        assert no_file.startswith(f"**Not queued:** {DESCRIBE_MENU}: this message has no attached image "
                                  f"(rule: menu_attachments_only)"), no_file
        assert "not links or embeds" in no_file and "/describe image:" in no_file
        assert "menu_attachments_only" in no_file_paint and "/disco init_image:" in no_file_paint
        assert f"clip.mp4 (video/mp4); rule: menu_still_image); it reads a {FORMAT_LIST} image" in not_still
        assert "menu_still_image" in not_still_describe
        # Only the GIF was downloaded: a link is never fetched, nor a file whose type is no still image.
        assert [r.path.rsplit("/", 1)[-1] for r in fake.requests if r.path.startswith("/attachments")] == \
            ["dance.gif"]
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_a_message_deleted_before_the_submit_and_a_failed_download_are_refused_with_the_fix(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        deleted = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        kept = await fake.user_message(fake.channel.id, fake.member, "", [picture("kept.png")])
        async with fake.run_client(make_bot(tmp_path, fake)):
            opened = await open_form(fake, deleted.id)
            await fake.message_ops.delete(deleted)  # Discord's CDN stops serving its files
            gone = await refusal(fake, await fake.submit_modal(opened, {"prompt": "a lighthouse"}))
            fake.fail_next("GET", "/attachments/{channel}/{attachment}/{name}", 503)
            failed = await refusal(fake, await fake.submit_modal(await open_form(fake, kept.id),
                                                                 {"prompt": "a lighthouse"}))
        assert gone.startswith(f"**Not queued:** {PAINT_MENU}: pic.png is no longer on Discord: its message was "
                               f"deleted, or the image removed from it, after the form was opened (rule: "
                               f"menu_message_gone); right-click the image where it is posted now"), gone
        assert failed.startswith(f"**Not queued:** {PAINT_MENU}: kept.png could not be downloaded from Discord "
                                 f"(HTTP 503; rule: attachment_download); right-click the message again"), failed
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_a_form_submitted_elsewhere_by_another_member_or_never_kept_is_refused(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        other = fake.guild.channels[1]
        not_a_form = parse_ref(await db.blobs.put(png(), "pic.png")).sha256
        values = {"prompt": "a lighthouse", "settings": ""}
        async with fake.run_client(make_bot(tmp_path, fake)):
            custom_id = (await open_form(fake, message.id)).modal["custom_id"]
            elsewhere = await refusal(fake, await fake.submit_modal(custom_id, values, channel_id=other.id))
            by_another = await refusal(fake, await fake.submit_modal(custom_id, values, user=fake.admin))
            unknown = [await refusal(fake, await fake.submit_modal(f"{FORM_PREFIX}{key}", values))
                       for key in ("0" * 64, not_a_form, f"{fake.channel.id}:{message.id}:1", "")]
        assert "(rule: menu_same_channel); right-click the message again in its own channel" in elsewhere
        assert "this form was opened by another member (rule: menu_own_form)" in by_another
        for text in unknown:
            assert text == (f"**Not queued:** {PAINT_MENU}: this form is no longer known to the bot (rule: "
                            f"menu_form_unknown); right-click the message again to open a new one"), text
        assert await db.jobs.list() == [] and not fake.downloads  # nothing was downloaded either
    run(body, tmp_path)


def test_the_servers_rules_apply_to_the_menus_and_the_bot_needs_no_message_history(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        bot_member = fake.guild.member(fake.bot_user.id)
        bot_member.permissions = BOT_PERMISSIONS & ~Perm.READ_MESSAGE_HISTORY
        async with fake.run_client(make_bot(tmp_path, fake)):
            echo = await answered(fake, await fake.submit_modal(await open_form(fake, message.id),
                                                                {"prompt": "a lighthouse"}))
            opened = await open_form(fake, message.id)
            await db.guilds.pause_intake(fake.guild.id, "new GPU tonight")
            paused = await refusal(fake, await fake.message_menu(PAINT_MENU, message.id))  # no form to fill
            paused_submit = await refusal(fake, await fake.submit_modal(opened, {"prompt": "a barn"}))
            await db.guilds.resume_intake(fake.guild.id)
            await db.guilds.allow_channel(fake.guild.id, fake.guild.channels[1].id)
            elsewhere = await refusal(fake, await fake.message_menu(PAINT_MENU, message.id))
            described = await refusal(fake, await fake.message_menu(DESCRIBE_MENU, message.id))
        assert echo.content.startswith("**Queued**"), echo.content
        for text in (paused, paused_submit):
            assert "this server's admins paused new renders (new GPU tonight); try again later" in text, text
        assert "renders are not allowed in this channel" in elsewhere
        assert "renders are not allowed in this channel" in described
        assert len(await db.jobs.list()) == 1 and message_fetches(fake) == []
    run(body, tmp_path)


def test_half_of_the_steps_skipped_follows_the_servers_cap_and_the_members_defaults(tmp_path):
    """The half is of the steps the job ends with: a member's default steps, then the server's
    max_steps lowering them (the share was once scaled down again: 17 of 100 for 300 typed)."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_steps=100, max_queued_per_user=5)
        message = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        async with fake.run_client(make_bot(tmp_path, fake)):
            typed = await answered(fake, await fake.submit_modal(
                await open_form(fake, message.id), {"prompt": "a barn", "settings": "steps=300"}))
            await db.users.set_defaults(fake.member.id, {"steps": 20})
            own = await answered(fake, await fake.submit_modal(await open_form(fake, message.id),
                                                               {"prompt": "a barn"}))
        for echo, (steps, skip) in ((typed, (100, 50)), (own, (20, 10))):
            spec = json.loads((await db.jobs.get(job_id_in(echo.content))).spec_json)
            assert (spec["steps"], spec["skip_steps"]) == (steps, skip), echo.content
            assert f"skip_steps {skip} of {steps} steps (half of them" in echo.content
            assert "the same share" not in echo.content  # no skip_steps of the member's was lowered
    run(body, tmp_path)


async def finish_with_images(db: Database, tmp_path, job_id: str, colors) -> list[bytes]:
    """Play the engine: complete `job_id` with one 64×64 PNG per colour (a job of n_batches images)."""
    job = await db.leases.claim(OWNER)
    refs, images = [], []
    for index, color in enumerate(colors):
        images.append(png(color))
        refs.append(await db.blobs.put(images[-1], f"out_{index}.png", job_id=job_id, role="output",
                                       fence=(job.attempt, OWNER)))
    await db.leases.complete(job_id, job.attempt, OWNER, artifacts=refs, gpu_seconds=1.0)
    return images


def test_on_a_result_of_several_images_the_menus_take_its_first_image_not_the_grid(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        images = await finish_with_images(db, tmp_path, job_id, [(200, 0, 0), (0, 200, 0), (0, 0, 200), (9, 9, 9)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            await delivered(db, job_id, 15.0)
            result = await fake.wait_for_message(fake.channel.id, lambda m: any("_grid." in a.filename
                                                                               for a in m.attachments))
            assert result.attachments[0].filename == f"{job_id}_grid.png"  # the grid comes first
            painted = await answered(fake, await fake.submit_modal(await open_form(fake, result.id),
                                                                   {"prompt": "a barn"}))
            described = await answered(fake, await fake.message_menu(DESCRIBE_MENU, result.id))
        for echo, another in ((painted, "the form's Image field picks another"),
                              (described, "for another, attach it to /describe image:")):
            spec = json.loads((await db.jobs.get(job_id_in(echo.content))).spec_json)
            assert await db.blobs.get(spec["init_image"]) == images[0], echo.content
            assert f"Used attachment 2 of {len(result.attachments)}, " in echo.content
            assert (f"(the result's first image, not the grid of them; {another})."
                    in echo.content.replace("\\", "")), echo.content
    run(body, tmp_path)


def rotated_photo() -> bytes:
    """A 120×40 JPEG whose EXIF orientation (6: turn 90°) makes it 40×120 upright, as a phone keeps it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (120, 40), (90, 60, 30)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_the_paintings_shape_is_the_image_as_the_engine_reads_it_not_discords_measure(tmp_path):
    """Discord measures no HEIC (no width or height sent), and may give a phone photo's sides
    before its EXIF turn: the shape comes from the downloaded image, upright."""
    wide = io.BytesIO()
    Image.new("RGB", (300, 100), (10, 20, 30)).save(wide, "WEBP")

    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=5)
        unmeasured = await fake.user_message(fake.channel.id, fake.member, "",
                                             [FakeFile("wide.webp", wide.getvalue(), "image/webp")])
        photo = await fake.user_message(fake.channel.id, fake.member, "", [
            FakeFile("phone.jpg", rotated_photo(), "image/jpeg", width=120, height=40)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            echoes = [await answered(fake, await fake.submit_modal(await open_form(fake, message.id),
                                                                   {"prompt": "a barn"}))
                      for message in (unmeasured, photo)]
        for echo, size in zip(echoes, ("300×100", "40×120")):
            assert f"the image's shape ({size}) → " in echo.content, echo.content
        spec = json.loads((await db.jobs.get(job_id_in(echoes[1].content))).spec_json)
        assert spec["height"] > spec["width"]  # upright, as the engine will read it
    run(body, tmp_path)


def test_a_preset_named_in_the_form_gives_its_settings_and_they_count_as_chosen(tmp_path):
    """A member paints with their preset: its skip_steps and size are theirs (no half skipped, no
    shape of the image); a name they have no preset of is refused before the image is downloaded."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=5)
        await db.presets.save(fake.guild.id, "quick", json.dumps({"steps": 40, "skip_steps": 4, "width": 512}),
                              1, owner_id=fake.member.id, actor_id=fake.member.id)
        message = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        async with fake.run_client(make_bot(tmp_path, fake)):
            echo = await answered(fake, await fake.submit_modal(await open_form(fake, message.id),
                                                                {"prompt": "a barn", "preset": "Quick "}))
            missing = await refusal(fake, await fake.submit_modal(await open_form(fake, message.id),
                                                                  {"prompt": "a barn", "preset": "slow"}))
        spec = json.loads((await db.jobs.get(job_id_in(echo.content))).spec_json)
        assert (spec["steps"], spec["skip_steps"], spec["width"]) == (40, 4, 512), echo.content
        assert "skip_steps 4 of 40 steps (as you set it)." in echo.content and "image's shape" not in echo.content
        assert missing.startswith("**Not queued:** no preset named 'slow'; see /preset list"), missing
        assert len(fake.downloads) == 1  # the refused form downloaded nothing
    run(body, tmp_path)


def test_the_form_picks_another_of_the_messages_images(tmp_path):
    """On a result of 4 images the form asks which (the grid's numbers); a number out of range is
    refused before anything is downloaded; a message with one image has no such field."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_user=5)
        job_id = await queue_job(db, fake)
        images = await finish_with_images(db, tmp_path, job_id, [(200, 0, 0), (0, 200, 0), (0, 0, 200), (9, 9, 9)])
        single = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        async with fake.run_client(make_bot(tmp_path, fake)):
            await delivered(db, job_id, 15.0)
            result = await fake.wait_for_message(fake.channel.id, lambda m: any("_grid." in a.filename
                                                                               for a in m.attachments))
            opened = await open_form(fake, result.id)
            assert form_values(opened.modal) == {"prompt": "", "settings": "", "preset": "", "image": ""}
            downloads = len(fake.downloads)
            refused = await refusal(fake, await fake.submit_modal(opened, {"prompt": "a barn", "image": "5"}))
            assert len(fake.downloads) == downloads
            painted = await answered(fake, await fake.submit_modal(await open_form(fake, result.id),
                                                                   {"prompt": "a barn", "image": "3"}))
            assert "image" not in form_values((await open_form(fake, single.id)).modal)
        assert refused.startswith(f"**Not queued:** {PAINT_MENU}: image '5' is not one of this message's 4 images "
                                  f"(rule: paint_image_number) — type 1 to 4"), refused
        spec = json.loads((await db.jobs.get(job_id_in(painted.content))).spec_json)
        assert await db.blobs.get(spec["init_image"]) == images[2]
        assert (f"Used attachment 4 of {len(result.attachments)}, out_2.png (the result's image number 3, not the "
                f"grid of them; the form's Image field picks another).") in painted.content.replace("\\", "")
    run(body, tmp_path)
