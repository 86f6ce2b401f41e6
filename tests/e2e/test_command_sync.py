"""Where the slash commands go: without `[discord] dev_guild_id` the global commands (every
server the bot is in), synced once and again only when the tree changes; with it, that server at
every start. A sync Discord refuses is logged with its fix and the bot still starts."""
from __future__ import annotations

import dataclasses
import json
import logging

from bot.client import SYNCED_COMMANDS_FILE
from storage import Database
from tests.support.bot import last_answer, make_bot, run
from tests.support.fakediscord import FakeDiscord


def bot_without_dev_guild(tmp_path, fake: FakeDiscord):
    """A bot whose commands go to every server (global commands), not to a dev guild."""
    client = make_bot(tmp_path, fake)
    client.config = dataclasses.replace(client.config, dev_guild_id=0)
    return client


def test_without_a_dev_guild_the_commands_sync_globally_when_the_tree_changed(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        global_bot = lambda: bot_without_dev_guild(tmp_path, fake)  # noqa: E731
        puts = lambda: fake.requests_to("PUT", f"/applications/{fake.application_id}/commands")  # noqa: E731
        async with fake.run_client(global_bot()):
            names = {command["name"] for command in fake.global_commands}
            assert {"disco", "animate", "disco-info", "disco-admin"} <= names
            assert not fake.guild_commands.get(fake.guild.id)
            info = await last_answer(fake, await fake.slash("disco-info"))  # served as a global command
            assert "Server defaults: `" in info.content
        assert len(puts()) == 1

        async with fake.run_client(global_bot()):  # the same tree: nothing is sent again
            pass
        assert len(puts()) == 1

        record = tmp_path / SYNCED_COMMANDS_FILE
        record.write_text(json.dumps({**json.loads(record.read_text()), "global": "0" * 64}))  # an older tree
        async with fake.run_client(global_bot()):
            pass
        assert len(puts()) == 2 and {command["name"] for command in fake.global_commands} == names
    run(body, tmp_path)


def test_a_server_tried_first_loses_its_own_copies_when_the_commands_go_global(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):  # dev_guild_id: the fake's server
            assert {command["name"] for command in fake.guild_commands[fake.guild.id]} >= {"disco", "animate"}
            assert not fake.global_commands
        client = make_bot(tmp_path, fake)
        client.config = dataclasses.replace(client.config, dev_guild_id=0)
        async with fake.run_client(client):
            assert fake.guild_commands[fake.guild.id] == []  # else each command would show twice there
            assert {command["name"] for command in fake.global_commands} >= {"disco", "animate"}
            info = await last_answer(fake, await fake.slash("disco-info"))
            assert "Server defaults: `" in info.content
        assert "dev_guild" not in json.loads((tmp_path / SYNCED_COMMANDS_FILE).read_text())
    run(body, tmp_path)


def test_a_dev_guild_the_bot_may_not_sync_to_is_logged_with_the_fix_and_the_bot_runs(tmp_path, caplog):
    async def body(fake: FakeDiscord, db: Database) -> None:
        path = f"/applications/{fake.application_id}/guilds/{fake.guild.id}/commands"
        fake.fail_next("PUT", path, 403, code=50001, message="Missing Access")
        with caplog.at_level(logging.ERROR, logger="disco.bot"):
            async with fake.run_client(make_bot(tmp_path, fake)) as client:
                assert client.is_ready()
        refusal = [r.getMessage() for r in caplog.records if "could not sync" in r.getMessage()]
        assert refusal == [f"could not sync the slash commands to server {fake.guild.id} (HTTP 403: "
                           "Missing Access); invite the bot to that server with the "
                           "applications.commands scope, or fix [discord] dev_guild_id"]
        assert not (tmp_path / SYNCED_COMMANDS_FILE).exists()
    run(body, tmp_path)


def test_the_message_menus_are_synced_and_hashed_with_the_slash_commands(tmp_path, monkeypatch):
    import bot.client
    from bot.cogs import EXTENSIONS
    from commands.message_image import MENU_NAMES

    async def body(fake: FakeDiscord, db: Database) -> None:
        global_bot = lambda: bot_without_dev_guild(tmp_path, fake)  # noqa: E731
        puts = lambda: fake.requests_to("PUT", f"/applications/{fake.application_id}/commands")  # noqa: E731
        monkeypatch.setattr(bot.client, "EXTENSIONS", tuple(e for e in EXTENSIONS if e != "bot.cogs.apps"))
        async with fake.run_client(global_bot()):  # a bot from before the menus
            pass
        assert len(puts()) == 1 and not [c for c in fake.global_commands if c.get("type") == 3]
        monkeypatch.setattr(bot.client, "EXTENSIONS", EXTENSIONS)
        async with fake.run_client(global_bot()):  # the upgrade: only the menus differ, and it syncs
            menus = {c["name"]: c for c in fake.global_commands if c.get("type") == 3}
            assert set(menus) == set(MENU_NAMES) and len(puts()) == 2
            # Served as global commands: a message without an image is refused by the menu itself.
            message = await fake.user_message(fake.channel.id, fake.member, "no image here")
            refused = await last_answer(fake, await fake.message_menu(MENU_NAMES[0], message.id))
            assert refused.ephemeral and "(rule: menu_attachments_only)" in refused.content.replace("\\", "")
        async with fake.run_client(global_bot()):  # the same tree again: nothing sent
            pass
        assert len(puts()) == 2
    run(body, tmp_path)
