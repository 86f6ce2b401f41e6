"""A loopback Discord for end-to-end tests of the bot with the real discord.py client.

``FakeDiscord`` is an aiohttp server on 127.0.0.1 that speaks enough of Discord's REST API v10
and gateway for discord.py 2.7: login, READY/GUILD_CREATE, RESUME, command sync, slash commands,
buttons, modals, interaction callbacks and follow-ups, channel messages with files, the CDN, and
Discord's rules and errors (3 s / 15 min interaction windows, 40060, 50027, 413/40005, 429s,
nonce dedup, message limits, members' messages read empty without the MESSAGE_CONTENT intent,
a deleted message's files gone from the CDN). See server.py for a usage example; tests/e2e/test_fakediscord.py for more.

API at a glance (``fake`` is a started FakeDiscord):
  set-up      FakeDiscord(guilds=[default_guild(upload_limit=...)], initial_response_timeout=3.0, ...)
              async with fake.run_client(bot)  |  with fake.patch_discord()  |  fake.api_base, fake.gateway_url
  world       fake.guild, fake.channel, fake.member (ordinary), fake.admin (Manage Guild), fake.bot_user,
              fake.dm_channel(user), await fake.join_guild(guild)
  act         await fake.send_interaction(guild_id, channel_id, user, "name sub", {opt: value}),
              fake.slash(...), fake.autocomplete(...), fake.click(message_id, custom_id),
              fake.submit_modal(record, {input_id: text}), fake.user_message(channel_id, user, text)
  faults      fake.fail_next(method, "/channels/{id}/messages/{mid}", 429, retry_after=0.2),
              fake.delay_next(...), await fake.close_gateway(4000, forget_session=False),
              await fake.gateway.send_reconnect(), fake.advance_clock(seconds)
  observe     fake.requests / requests_to(method, pattern) / unhandled / errors, fake.messages_in(channel_id),
              fake.message(id), fake.interactions[id].callbacks, fake.callbacks_for(id), fake.followups_for(id),
              fake.original_response(id), fake.downloads, fake.global_commands, fake.guild_commands,
              fake.gateway.frames / identify_count / resume_count
  wait        await fake.wait_for(predicate), fake.wait_for_callback(record), fake.wait_for_message(channel_id)

Modules: server (FakeDiscord), models (guild/channel/user dataclasses), builders (what a test
user does), interactions / rest (routes), messages (message store semantics), gateway, store
(recorded data), validate (message limits), wire (HTTP details).
"""
from .models import (
                     BOT_USER_ID,
                     DEFAULT_GUILD_ID,
                     GENERAL_CHANNEL_ID,
                     SECOND_CHANNEL_ID,
                     FakeChannel,
                     FakeFile,
                     FakeGuild,
                     FakeMember,
                     FakeRole,
                     FakeUser,
                     Perm,
                     default_guild,
)
from .server import API_PREFIX, FakeDiscord
from .store import (
                     FLAG_EPHEMERAL,
                     FLAG_LOADING,
                     CallbackRecord,
                     GatewayFrame,
                     InteractionRecord,
                     RecordedRequest,
                     StoredAttachment,
                     StoredMessage,
)

__all__ = [
    "API_PREFIX", "BOT_USER_ID", "DEFAULT_GUILD_ID", "GENERAL_CHANNEL_ID", "SECOND_CHANNEL_ID",
    "FLAG_EPHEMERAL", "FLAG_LOADING", "CallbackRecord", "FakeChannel", "FakeDiscord", "FakeFile", "FakeGuild",
    "FakeMember", "FakeRole", "FakeUser", "GatewayFrame", "InteractionRecord", "Perm", "RecordedRequest",
    "StoredAttachment", "StoredMessage", "default_guild",
]
