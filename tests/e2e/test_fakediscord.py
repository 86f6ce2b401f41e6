"""End-to-end checks of the loopback Discord (tests/support/fakediscord) with the real discord.py client.

A tiny bot defined here logs in, syncs commands and handles slash commands, buttons and a modal
against FakeDiscord, so later bot tests can rely on the fake behaving like Discord: deferrals,
follow-ups with files, nonce dedup, 429 retries, upload limits, token expiry and gateway RESUME.
Each test runs its own event loop via asyncio.run (no pytest-asyncio needed).
"""
from __future__ import annotations

import asyncio
import io
import re

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.support.fakediscord import FakeDiscord, FakeFile, default_guild

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


class Reroll(discord.ui.DynamicItem[discord.ui.Button], template=r"job:(?P<job>\d+):rr"):
    """A restart-safe button: the job id lives in the custom_id."""

    def __init__(self, job: int) -> None:
        super().__init__(discord.ui.Button(label="Reroll", custom_id=f"job:{job}:rr"))
        self.job = job

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match):
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"rerolled {self.job}")  # callback type 7


class Persistent(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Hi", custom_id="persist:hi")
    async def hi(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer()  # callback type 6 on a component
        await interaction.followup.send("hi back", ephemeral=True)


class StepsModal(discord.ui.Modal, title="Settings"):
    steps = discord.ui.TextInput(label="Steps", custom_id="steps")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"steps={self.steps.value}")


def make_bot(intents: discord.Intents | None = None) -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=intents or discord.Intents.default(), guild_ready_timeout=0.1)
    bot.events = []  # type: ignore[attr-defined]
    bot.saved = None  # type: ignore[attr-defined]

    @bot.event
    async def setup_hook() -> None:
        bot.add_dynamic_items(Reroll)
        bot.add_view(Persistent())

    @bot.event
    async def on_ready() -> None:
        bot.events.append("ready")

    @bot.event
    async def on_resumed() -> None:
        bot.events.append("resumed")

    @bot.tree.command(description="Answer at once")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    @bot.tree.command(description="Defer, then post an image")
    async def render(interaction: discord.Interaction, prompt: str) -> None:
        await interaction.response.defer(thinking=True)
        await asyncio.sleep(0.05)  # "work"
        await interaction.followup.send(f"done: {prompt}", file=discord.File(io.BytesIO(PNG), "out.png"))

    @bot.tree.command(description="Read an init image")
    async def init(interaction: discord.Interaction, image: discord.Attachment) -> None:
        await interaction.response.defer()
        data = await image.read()
        await interaction.followup.send(f"got {len(data)} bytes of {image.filename}")

    @bot.tree.command(description="Defer and keep the token for later")
    async def later(interaction: discord.Interaction) -> None:
        bot.saved = interaction
        await interaction.response.defer()

    @bot.tree.command(description="Admins only")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def admin(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")

    @admin.error
    async def admin_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await interaction.response.send_message("denied", ephemeral=True)

    @bot.tree.command(description="Open a modal")
    async def settings(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(StepsModal())

    admin_group = app_commands.Group(name="disco-admin", description="Admin")
    quota = app_commands.Group(name="quota", description="Quotas", parent=admin_group)

    @quota.command(name="set", description="Set a quota")
    async def quota_set(interaction: discord.Interaction, user: discord.Member, seconds: int) -> None:
        await interaction.response.send_message(f"{user.display_name}:{seconds}")

    async def preset_names(interaction: discord.Interaction, current: str):
        return [app_commands.Choice(name=n, value=n) for n in ("painterly", "photo") if n.startswith(current)]

    @bot.tree.command(description="Use a preset")
    @app_commands.autocomplete(name=preset_names)
    async def preset(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    @bot.tree.context_menu(name="Quote")
    async def quote(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"{message.content} ({len(message.attachments)} file)")

    bot.tree.add_command(admin_group)
    return bot


def run(coro_fn, intents: discord.Intents | None = None, **fake_kwargs):
    """Start a FakeDiscord and the bot, sync commands to the guild, run ``coro_fn(fake, bot)``."""
    async def main():
        async with FakeDiscord(**fake_kwargs) as fake:
            bot = make_bot(intents)
            async with fake.run_client(bot):
                # Guild commands, as a dev setup would: the fake must then send data.guild_id.
                bot.tree.copy_global_to(guild=discord.Object(fake.guild.id))
                await bot.tree.sync(guild=discord.Object(fake.guild.id))
                await coro_fn(fake, bot)
            assert not fake.errors, fake.errors
            assert not fake.unhandled, [(r.method, r.path) for r in fake.unhandled]
    asyncio.run(asyncio.wait_for(main(), 30))


def test_login_ready_sync_and_exact_json_content_type():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        assert bot.events == ["ready"]
        guild = bot.get_guild(fake.guild.id)
        assert guild is not None and {c.name for c in guild.text_channels} == {"general", "renders"}
        assert guild.me is not None and guild.me.id == fake.bot_user.id
        stored = fake.guild_commands[fake.guild.id]
        assert {c["name"] for c in stored} == {"ping", "render", "init", "later", "admin", "settings", "preset",
                                               "disco-admin", "Quote"}
        assert all(c["id"].isdigit() and c["guild_id"] == str(fake.guild.id) for c in stored)
        assert [f.t for f in fake.gateway.frames if f.t][:2] == ["READY", "GUILD_CREATE"]
        # discord.py only parses JSON when the header is exactly application/json.
        async with aiohttp.ClientSession() as session:
            async with session.get(fake.api_base + "/users/@me",
                                   headers={"Authorization": f"Bot {fake.token}"}) as resp:
                assert resp.headers["Content-Type"] == "application/json"
            async with session.get(fake.api_base + "/users/@me") as resp:
                assert resp.status == 401
    run(body)


def test_slash_defers_within_3s_and_followup_carries_png():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        rec = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.member, "render", {"prompt": "a cat"})
        cb = await fake.wait_for_callback(rec)
        assert cb.type == 5 and cb.delay < 3.0
        await fake.wait_for(lambda: rec.followup_ids)
        msg = fake.followups_for(rec.id)[0]
        # The first follow-up after a defer fills in the "thinking..." message itself.
        assert msg.id == rec.original_message_id and not msg.loading
        assert msg.content == "done: a cat" and msg.files == {"out.png": PNG}
        assert msg.interaction_metadata["name"] == "render"
        posted = fake.requests_to("POST", "/webhooks/{app}/{token}")[0]
        assert posted.files[0][1:] == ("out.png", PNG)
    run(body)


def test_nonce_dedup_and_edit_after_forced_429():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        channel = bot.get_channel(fake.channel.id)
        first = await channel.send("queued", nonce=1234)
        again = await channel.send("queued", nonce=1234)
        assert first.id == again.id and len(fake.messages_in(fake.channel.id)) == 1
        fake.fail_next("PATCH", "/channels/{cid}/messages/{mid}", 429, retry_after=0.2)
        start = asyncio.get_running_loop().time()
        edited = await first.edit(content="50%")
        assert asyncio.get_running_loop().time() - start >= 0.2
        assert edited.content == "50%" and fake.message(first.id).content == "50%"
        patches = fake.requests_to("PATCH", f"/channels/{fake.channel.id}/messages/{first.id}")
        assert [(p.status, p.forced) for p in patches] == [(429, True), (200, False)]
        assert patches[0].response["retry_after"] == 0.2
    run(body)


def test_buttons_reach_dynamic_item_and_persistent_view():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Reroll(42))
        sent = await bot.get_channel(fake.channel.id).send("result", view=view)
        await bot.get_channel(fake.channel.id).send("panel", view=Persistent())
        rec = await fake.click(sent.id, "job:42:rr")
        assert (await fake.wait_for_callback(rec)).type == 7
        assert fake.message(sent.id).content == "rerolled 42"
        panel = fake.messages_in(fake.channel.id)[-1]
        rec2 = await fake.click(panel.id, "persist:hi", user=fake.admin)
        assert (await fake.wait_for_callback(rec2)).type == 6
        await fake.wait_for(lambda: rec2.followup_ids)
        reply = fake.followups_for(rec2.id)[0]
        assert reply.content == "hi back" and reply.ephemeral
    run(body)


def test_attachment_option_is_downloaded_from_the_fake():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        rec = await fake.slash("init", {"image": FakeFile("init.png", PNG, "image/png")})
        await fake.wait_for(lambda: rec.followup_ids)
        assert fake.followups_for(rec.id)[0].content == f"got {len(PNG)} bytes of init.png"
        assert [d.path.rsplit("/", 1)[-1] for d in fake.downloads] == ["init.png"]
    run(body)


def test_file_over_upload_limit_is_rejected_with_40005():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        channel = bot.get_channel(fake.channel.id)
        with pytest.raises(discord.HTTPException) as err:
            await channel.send(file=discord.File(io.BytesIO(b"x" * 2000), "big.bin"))
        assert err.value.status == 413 and err.value.code == 40005
        assert fake.messages_in(fake.channel.id) == []
        ok = await channel.send(file=discord.File(io.BytesIO(b"x" * 1000), "fits.bin"))
        assert fake.message(ok.id).files == {"fits.bin": b"x" * 1000}
    run(body, guilds=[default_guild(upload_limit=1000)])


def test_gateway_drop_resumes_and_replays_missed_interaction():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        await fake.close_gateway(4000)
        rec = await fake.slash("ping")  # sent while the bot is away: replayed after RESUME
        await fake.wait_for(lambda: "resumed" in bot.events)
        assert fake.gateway.resume_count == 1 and fake.gateway.identify_count == 1
        assert (await fake.wait_for_callback(rec)).type == 4
        assert fake.original_response(rec.id).content == "pong"
        # A forgotten session gets INVALID_SESSION, and the bot identifies again (skipping the
        # 5 s pause discord.py's before_identify_hook takes before every re-identify).
        async def no_pause(shard_id, *, initial=False):
            return None
        bot.before_identify_hook = no_pause
        await fake.close_gateway(4000, forget_session=True)
        await fake.wait_for(lambda: fake.gateway.identify_count == 2)
        await fake.wait_for(lambda: bot.is_ready() and fake.gateway.session.ws is not None)
        rec2 = await fake.slash("ping")
        assert (await fake.wait_for_callback(rec2)).type == 4
    run(body)


def test_admin_check_uses_member_permissions():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        plain = await fake.slash("admin", user=fake.member)
        admin = await fake.slash("admin", user=fake.admin)
        await fake.wait_for(lambda: plain.callbacks and admin.callbacks)
        assert fake.original_response(plain.id).content == "denied"
        assert fake.original_response(plain.id).ephemeral
        assert fake.original_response(admin.id).content == "ok"
    run(body)


def test_expired_token_gives_50027_and_double_ack_40060():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        rec = await fake.slash("later")
        await fake.wait_for_callback(rec)
        # discord.py refuses a second response itself, so send the duplicate by hand.
        async with aiohttp.ClientSession() as session:
            url = f"{fake.api_base}/interactions/{rec.id}/{rec.token}/callback"
            async with session.post(url, json={"type": 5}) as resp:
                assert resp.status == 400 and (await resp.json())["code"] == 40060
        fake.advance_clock(16 * 60)
        with pytest.raises(discord.HTTPException) as err:
            await bot.saved.followup.send("too late")
        assert err.value.status == 401 and err.value.code == 50027
    run(body)


def test_modal_round_trip():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        rec = await fake.slash("settings")
        assert (await fake.wait_for_callback(rec)).type == 9 and rec.modal["title"] == "Settings"
        sub = await fake.submit_modal(rec, {"steps": "50"})
        await fake.wait_for_callback(sub)
        assert fake.original_response(sub.id).content == "steps=50"
    run(body)


def test_history_fetch_delete_attachment_replace_and_retry_after_502():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        channel = bot.get_channel(fake.channel.id)
        fake.fail_next("POST", "/channels/{cid}/messages", 502)  # discord.py retries after 1 s
        msg = await channel.send("v1", file=discord.File(io.BytesIO(b"one"), "a.txt"))
        assert [r.status for r in fake.requests_to("POST", "/channels/{cid}/messages")] == [502, 200]
        # Edit semantics: `attachments` lists what to keep; new files are added.
        msg = await msg.edit(attachments=[msg.attachments[0], discord.File(io.BytesIO(b"two"), "b.txt")])
        assert fake.message(msg.id).files == {"a.txt": b"one", "b.txt": b"two"}
        msg = await msg.edit(attachments=[discord.File(io.BytesIO(b"three"), "c.txt")])
        assert fake.message(msg.id).files == {"c.txt": b"three"} and msg.edited_at is not None
        assert await msg.attachments[0].read() == b"three"
        other = await channel.send("v2")
        history = [m.id async for m in channel.history(limit=10)]
        assert history == [other.id, msg.id]  # newest first
        assert (await channel.fetch_message(msg.id)).content == "v1"
        await other.delete()
        with pytest.raises(discord.NotFound):
            await channel.fetch_message(other.id)
        assert fake.message(other.id).deleted
        # Discord's hidden budget for edits of messages older than an hour (error 30046).
        fake.advance_clock(2 * 3600)
        await msg.edit(content="late edit")
        with pytest.raises(discord.HTTPException) as err:
            await msg.edit(content="one too many")
        assert err.value.code == 30046
    run(body, old_message_edit_limit=1)


async def members_message(fake: FakeDiscord, bot: commands.Bot, content: str) -> tuple[object, discord.Message]:
    """A member posts ``content`` with a picture: the stored message, and the one the bot received."""
    def by_member(message: discord.Message) -> bool:
        return message.author.id == fake.member.user.id and message.id == posted.id
    posted = None
    received = asyncio.ensure_future(bot.wait_for("message", check=by_member, timeout=10))
    posted = await fake.user_message(fake.channel.id, fake.member, content,
                                     [FakeFile("a.png", PNG, "image/png", width=1, height=1)])
    return posted, await received


def test_members_messages_read_empty_without_the_message_content_intent():
    """Discord's rule for a bot without the privileged MESSAGE_CONTENT intent (as the bot runs):
    a member's message comes without content, attachments, embeds and components, on the gateway
    and over REST, except when it mentions the bot, in a DM, and as a message menu's target."""
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        channel = bot.get_channel(fake.channel.id)
        posted, live = await members_message(fake, bot, "hello")
        fetched = await channel.fetch_message(posted.id)
        listed = [m async for m in channel.history(limit=5)]
        assert [m.id for m in listed] == [posted.id]
        for message in (live, fetched, *listed):
            assert (message.content, message.attachments, message.embeds, message.components) == ("", [], [], [])
        quoted = await fake.message_menu("Quote", posted.id)  # the menu's target comes whole
        await fake.wait_for_callback(quoted)
        assert fake.original_response(quoted.id).content == "hello (1 file)"

        mention, live = await members_message(fake, bot, f"<@{fake.bot_user.id}> hello")
        fetched = await channel.fetch_message(mention.id)
        assert [(m.content, len(m.attachments)) for m in (live, fetched)] == [(f"<@{fake.bot_user.id}> hello", 1)] * 2
        own = await channel.send("mine")
        assert (await channel.fetch_message(own.id)).content == "mine"
        dm = fake.dm_channel(fake.member.user)
        in_dm = await fake.message_ops.create(dm.id, {"content": "in a DM"}, [], author=fake.member.user.payload())
        assert (await bot.get_partial_messageable(dm.id).fetch_message(in_dm.id)).content == "in a DM"
    run(body)

    async def asked(fake: FakeDiscord, bot: commands.Bot) -> None:
        posted, live = await members_message(fake, bot, "hello")
        fetched = await bot.get_channel(fake.channel.id).fetch_message(posted.id)
        assert [(m.content, len(m.attachments)) for m in (live, fetched)] == [("hello", 1)] * 2
    intents = discord.Intents.default()
    intents.message_content = True
    run(asked, intents=intents)


def test_a_deleted_messages_files_are_gone_from_the_cdn():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        posted = await fake.user_message(fake.channel.id, fake.member, "", [FakeFile("a.png", PNG, "image/png")])
        url = posted.attachments[0].url
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                assert resp.status == 200 and await resp.read() == PNG
            await fake.message_ops.delete(posted)
            async with session.get(url) as resp:
                assert resp.status == 404
    run(body)


def test_message_limits_are_enforced():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        channel = bot.get_channel(fake.channel.id)
        with pytest.raises(discord.HTTPException) as err:
            await channel.send("x" * 2001)
        assert err.value.status == 400 and err.value.code == 50035 and "content" in err.value.text
        with pytest.raises(discord.HTTPException) as err:
            await channel.send(embed=discord.Embed(description="y" * 4097))
        assert err.value.code == 50035
    run(body)


def test_subcommand_user_option_autocomplete_and_dm():
    async def body(fake: FakeDiscord, bot: commands.Bot) -> None:
        rec = await fake.slash("disco-admin quota set", {"user": fake.member, "seconds": 600}, user=fake.admin)
        await fake.wait_for_callback(rec)
        assert fake.original_response(rec.id).content == "member:600"
        auto = await fake.autocomplete("preset", {"name": "pa"}, focused="name")
        assert (await fake.wait_for_callback(auto)).data == {"choices": [{"name": "painterly", "value": "painterly"}]}
        dm = await fake.send_interaction(None, 0, fake.member.user, "ping")
        await fake.wait_for_callback(dm)
        reply = fake.original_response(dm.id)
        assert reply.content == "pong" and reply.channel_id == fake.dm_channel(fake.member.user).id
    run(body)
