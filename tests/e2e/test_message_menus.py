"""The message menus (right-click a message → Apps) end to end: the real DiscoBot against the
loopback Discord, which sends the target message in `data.resolved.messages` as Discord does.
Nothing renders: the queued job's spec is what is checked.

"Describe image" queues a describe job of the message's first still image; "Paint from this
image" opens its form, and the submit — on a restarted bot — fetches the message again and
queues a `/disco` still with that image as init_image and half of the steps skipped. Refused,
with the rule and the fix, before anything is queued: a message without attachments, one
whose attachments are no still images, a message deleted before the form is sent, a channel
the server does not render in, a bot that may not read the channel's messages, a forged form.
"""
from __future__ import annotations

import io
import json

from PIL import Image

from bot.cogs.apps import FORM_PREFIX
from commands.message_image import DESCRIBE_MENU, PAINT_MENU
from engine.media.still_formats import FORMAT_LIST
from storage import Database
from tests.support.bot import answered, form_values, job_id_in, make_bot, run
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


def test_describe_image_queues_the_first_still_image_of_the_message(tmp_path):
    data = png()

    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "look",
                                          [FakeFile("notes.txt", b"hello", "text/plain"),
                                           FakeFile("pic.png", data, "image/png", width=64, height=64)])
        async with fake.run_client(make_bot(tmp_path, fake)):
            echo = await answered(fake, await fake.message_menu(DESCRIBE_MENU, message.id))
        assert echo.content.startswith("**Queued**") and not echo.ephemeral, echo.content
        assert "Used attachment 2 of 2, pic.png (the message's first still image)." in echo.content
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
        assert opened.modal["custom_id"] == f"{FORM_PREFIX}{fake.channel.id}:{message.id}:{opened.id}"
        assert opened.modal["title"] == PAINT_MENU and form_values(opened.modal) == {"prompt": "", "settings": ""}
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
        assert spec["width"] == spec["height"] and "; shaped like the image (--ar 1:1)." in echo.content
        assert "Used attachment" not in echo.content  # one attachment: nothing to say
        spec = json.loads((await db.jobs.get(job_id_in(chosen.content))).spec_json)
        assert (spec["steps"], spec["skip_steps"]) == (40, 8)
        assert "skip_steps 8 of 40 steps (as you set it)." in chosen.content and spec["width"] > spec["height"]
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


def test_a_message_deleted_before_the_submit_and_a_forged_form_are_refused(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        other = fake.guild.channels[1]
        async with fake.run_client(make_bot(tmp_path, fake)):
            opened = await open_form(fake, message.id)
            await fake.message_ops.delete(message)
            gone = await refusal(fake, await fake.submit_modal(opened, {"prompt": "a lighthouse"}))
            forged = await refusal(fake, await fake.submit_modal(
                f"{FORM_PREFIX}{other.id}:{message.id}:1", {"prompt": "a lighthouse", "settings": ""}))
        assert gone.startswith(f"**Not queued:** {PAINT_MENU}: the message with the image was deleted before "
                               f"the form was sent (rule: menu_message_gone)"), gone
        assert "menu_same_channel" in forged
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_the_servers_rules_and_the_bots_permissions_apply_to_the_menus(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        message = await fake.user_message(fake.channel.id, fake.member, "", [picture()])
        bot_member = fake.guild.member(fake.bot_user.id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            opened = await open_form(fake, message.id)
            bot_member.permissions = BOT_PERMISSIONS & ~Perm.READ_MESSAGE_HISTORY
            no_history = await refusal(fake, await fake.message_menu(PAINT_MENU, message.id))
            forbidden = await refusal(fake, await fake.submit_modal(opened, {"prompt": "a lighthouse"}))
            bot_member.permissions = None

            await db.guilds.allow_channel(fake.guild.id, fake.guild.channels[1].id)
            elsewhere = await refusal(fake, await fake.message_menu(PAINT_MENU, message.id))
            described = await refusal(fake, await fake.message_menu(DESCRIBE_MENU, message.id))
        assert no_history.startswith(f"**Not queued:** {PAINT_MENU}: the bot cannot read this channel's messages")
        assert "(rule: bot_read_history)" in no_history and "Read Message History" in no_history
        assert "(rule: bot_read_history)" in forbidden
        assert "renders are not allowed in this channel" in elsewhere
        assert "renders are not allowed in this channel" in described
        assert await db.jobs.list() == []
    run(body, tmp_path)
