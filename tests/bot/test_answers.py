"""bot/answers.py and bot/tree.py without a Discord connection: which text, sent which way.

`Recorder` stands in for a `discord.Interaction` and records what would be sent; the commands,
groups and errors are discord.py's own. tests/e2e/test_errors.py runs the same paths against
the loopback Discord.
"""
from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import discord
import pytest
from discord import app_commands

from bot.answers import (
    ADMIN,
    NOT_DONE,
    NOT_QUEUED,
    REQUEUE,
    SETTINGS,
    THINKING,
    AnsweringView,
    answer_error,
    answers_errors,
    command_wording,
)
from bot.checks import NotAdmin
from bot.tree import DiscoTree
from commands.errors import CommandError
from storage import (ChannelNotAllowed, DatabaseLocked, DatabaseUnavailable, DiskFull, IntakePaused, InvalidValue,
                     NotFound)

DEFERRED = discord.InteractionResponseType.deferred_channel_message
REFERENCE = 1234


class Recorder:
    """The parts of a `discord.Interaction` the error path uses; `sent` lists (how, text, ephemeral)."""

    def __init__(self, *, response_type=None, thinking=None, command=None) -> None:
        self.id, self.user, self.command = REFERENCE, SimpleNamespace(id=42), command
        self.data = {"custom_id": "disco:cancel:X"}
        self.extras = {THINKING: thinking} if thinking else {}
        self.sent: list[tuple] = []
        self.response = SimpleNamespace(is_done=lambda: response_type is not None, type=response_type,
                                        send_message=self._record("response"))
        self.followup = SimpleNamespace(send=self._record("followup"))

    def _record(self, how: str):
        async def send(text, *, ephemeral=False, **_):
            self.sent.append((how, text, ephemeral))
        return send

    async def delete_original_response(self) -> None:
        self.sent.append(("delete", None, None))


@app_commands.command(name="boom", description="raises", extras=NOT_QUEUED.extras())
async def boom(interaction: discord.Interaction) -> None:
    raise AssertionError("not run in these tests")


def answer(interaction, error, wording=None):
    asyncio.run(answer_error(interaction, error, wording))
    return interaction.sent


def test_a_refusal_names_the_rule_in_the_commands_wording_and_logs_nothing(caplog):
    sent = answer(Recorder(command=boom), CommandError("prompt: too long; shorten it", "prompt"))
    assert sent == [("response", "**Not queued:** prompt: too long; shorten it", True)]
    sent = answer(Recorder(), InvalidValue("max_steps must be at least 1"), SETTINGS)
    assert sent == [("response", "**Refused:** max\\_steps must be at least 1", True)]
    sent = answer(Recorder(), NotAdmin("server-wide presets need Manage Server (rule: manage_guild)"), SETTINGS)
    assert sent == [("response", "**Refused:** server-wide presets need Manage Server (rule: manage_guild)", True)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_storage_refusal_cannot_break_the_formatting_or_ping_with_the_text_it_quotes():
    # An admin's pause reason, a job id typed by a member: shown as typed, not as markdown.
    reason = "@everyone **maintenance** `until 5"
    sent = answer(Recorder(command=boom), IntakePaused(f"this server's admins paused new renders ({reason})"))
    assert sent == [("response", "**Not queued:** this server's admins paused new renders "
                                 "(@\u200beveryone \\*\\*maintenance\\*\\* \\`until 5)", True)]
    sent = answer(Recorder(command=boom), ChannelNotAllowed("renders are not allowed in this channel; use <#400>"))
    assert sent == [("response", "**Not queued:** renders are not allowed in this channel; use <#400>", True)]
    sent = answer(Recorder(), NotFound("no job '||x||'; check the id"), NOT_DONE)
    assert sent == [("response", "**Not done:** no job '\\|\\|x\\|\\|'; check the id", True)]


def test_anything_else_is_logged_once_and_answered_with_the_reference(caplog):
    sent = answer(Recorder(command=boom), RuntimeError("secret /srv/path"), ADMIN)
    assert sent == [("response", f"**Failed:** something went wrong on our side (reference `{REFERENCE}`); "
                                 f"nothing was changed if this was the only answer — try again", True)]
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == f"/boom failed (interaction {REFERENCE}, user 42)"
    assert isinstance(record.exc_info[1], RuntimeError)


@pytest.mark.parametrize("error", [
    DatabaseUnavailable("PostgreSQL at postgresql://disco@db.lan/disco is not reachable (...)", "db.lan"),
    DatabaseLocked("/srv/disco/data/disco.db: a lock was held by another connection", "/srv"),
    DiskFull("the disk of the PostgreSQL server db.lan is full", "db.lan")])
def test_a_database_that_is_away_is_said_so_without_its_address_or_a_traceback(caplog, error):
    """PostgreSQL restarting (or busy, or its disk full) while a member clicks: a known state
    the operator is already told about, so one warning line (not a traceback per click), and
    a member told to try again shortly, never the database's host or path."""
    sent = answer(Recorder(command=boom), error)
    assert sent == [("response", "**Not queued:** the bot's database is not answering right now (a "
                                 "restart, or a full disk); try again in a minute, and tell the server "
                                 "admins if it keeps happening", True)]
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert str(error) in record.getMessage() and "/boom" in record.getMessage()


@pytest.mark.parametrize("response_type, thinking, expected", [
    (None, None, ["response"]),                      # not answered yet
    (DEFERRED, "public", ["delete", "followup"]),    # the public "thinking…" would show the follow-up
    (DEFERRED, None, ["delete", "followup"]),        # deferred elsewhere: treated as public, to be safe
    (DEFERRED, "private", ["followup"]),             # fills the ephemeral "thinking…"
])
def test_the_answer_is_private_whatever_was_sent_before(response_type, thinking, expected):
    sent = answer(Recorder(response_type=response_type, thinking=thinking), CommandError("no", "x"))
    assert [how for how, _, _ in sent] == expected
    assert all(ephemeral for how, _, ephemeral in sent if how != "delete")


def test_a_command_takes_its_wording_from_itself_or_its_group():
    group = app_commands.Group(name="preset", description="d", extras=SETTINGS.extras())

    @group.command(name="save", description="d")
    async def save(interaction: discord.Interaction) -> None: ...

    @group.command(name="use", description="d", extras=NOT_QUEUED.extras())
    async def use(interaction: discord.Interaction) -> None: ...

    assert (command_wording(save), command_wording(use), command_wording(None)) == (SETTINGS, NOT_QUEUED, NOT_DONE)


def test_the_tree_unwraps_what_the_command_raised(caplog):
    tree = DiscoTree(discord.Client(intents=discord.Intents.none()))
    interaction = Recorder(response_type=DEFERRED, thinking="public", command=boom)
    asyncio.run(tree.on_error(interaction, app_commands.CommandInvokeError(boom, CommandError("bad seed", "seed"))))
    assert interaction.sent[-1] == ("followup", "**Not queued:** bad seed", True)
    interaction = Recorder(command=boom)
    asyncio.run(tree.on_error(interaction, NotAdmin("needs Manage Server (rule: manage_guild)")))
    assert interaction.sent == [("response", "**Not queued:** needs Manage Server (rule: manage_guild)", True)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_buttons_error_goes_the_same_way_in_the_buttons_wording(caplog):
    class Button:
        wording = REQUEUE

        @answers_errors
        async def callback(self, interaction) -> None:
            raise RuntimeError("boom")

    interaction = Recorder(response_type=DEFERRED, thinking="private")
    asyncio.run(Button().callback(interaction))
    assert interaction.sent == [("followup", f"**Not done:** something went wrong on our side (reference "
                                             f"`{REFERENCE}`); try again, and tell the server admins if it "
                                             f"keeps happening", True)]
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == f"button disco:cancel:X failed (interaction {REFERENCE}, user 42)"

    async def in_a_view():
        interaction = Recorder()
        await AnsweringView().on_error(interaction, CommandError("gone", "job"), Button())
        return interaction.sent
    assert asyncio.run(in_a_view()) == [("response", "**Not queued:** gone", True)]
