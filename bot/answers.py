"""Answering an interaction privately, and the one answer for a refused or broken request.

Commands and buttons do not catch: what they raise comes here, through `bot.tree.DiscoTree.on_error`
for slash commands and message menus, `answers_errors` for our `DynamicItem` buttons (discord.py only logs what a
dynamic item's callback raises) and `AnsweringView.on_error` for any other item of our views.
`answer_error` is that one path: a refusal we expect (`REFUSALS`: the engine's and the commands
layer's `SpecError`, storage's refusals, app_commands check failures such as
`bot.checks.NotAdmin`) is shown only to the caller and names the rule and the fix; the database
being away (`DATABASE_AWAY`) is one warning line and a "try again in a minute"; anything else
is logged once with the interaction id and answered with a generic line giving that id as the
reference, never a traceback.

How the lines begin is the command's `Wording`, kept in its `extras` (or its group's): users know
"**Not queued:**" from the commands that queue a job, "**Not done:**" from the job commands and
"**Refused:**" / "**Failed:**" from the settings commands.

A public "thinking…" message (`think`) is filled in by the first follow-up whatever that
follow-up's `ephemeral` flag says, so a private answer after one deletes it first.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

import discord
from discord import app_commands

from commands.echo import format_refusal
from engine.errors import SpecError
from storage import (CapExceeded, ChannelNotAllowed, DatabaseLocked, DatabaseUnavailable, DiskFull, DuplicateJob,
                     IntakePaused, InvalidValue, NotFound, QuotaExceeded)

log = logging.getLogger("disco.bot.answers")

# Storage refusals whose messages already name the rule and the fix.
STORAGE_REFUSALS = (CapExceeded, ChannelNotAllowed, DuplicateJob, IntakePaused, QuotaExceeded, InvalidValue,
                    NotFound)
# Everything a user can cause and fix; CommandError is a SpecError.
REFUSALS = (SpecError, *STORAGE_REFUSALS, app_commands.CheckFailure)
# The database restarting, busy or out of disk: a state the operator is told about, not a bug;
# the member hears neither the database's address nor a reference to a traceback.
DATABASE_AWAY = (DatabaseUnavailable, DatabaseLocked, DiskFull)
DATABASE_AWAY_TEXT = ("the bot's database is not answering right now (a restart, or a full disk); "
                      "try again in a minute, and tell the server admins if it keeps happening")
NO_MENTIONS = discord.AllowedMentions.none()
MESSAGE_LIMIT = 2000
ADVICE = "try again, and tell the server admins if it keeps happening"
WORDING = "wording"    # the key of a command's `Wording` in its extras
THINKING = "thinking"  # the key in `interaction.extras` saying who sees the "thinking…" message


@dataclass(frozen=True)
class Wording:
    """How a command's refusals (`refused`) and failures (`failed`) begin, and what a failure
    advises."""

    refused: str
    failed: str
    advice: str = ADVICE

    def extras(self) -> dict[str, Any]:
        """For `app_commands.command(extras=…)` or a GroupCog's `group_extras`."""
        return {WORDING: self}


NOT_QUEUED = Wording("Not queued", "Not queued")  # commands that queue a job
NOT_DONE = Wording("Not done", "Not done")        # the job commands and buttons
REQUEUE = Wording("Not queued", "Not done")       # buttons that queue a job again
SETTINGS = Wording("Refused", "Failed", "try again")
ADMIN = Wording("Refused", "Failed", "nothing was changed if this was the only answer — try again")


def command_wording(command: Any) -> Wording:
    """The `Wording` in the extras of `command` or the nearest group above it; `NOT_DONE` if none."""
    while command is not None:
        wording = command.extras.get(WORDING)
        if wording is not None:
            return wording
        command = getattr(command, "parent", None)
    return NOT_DONE


def refusal_text(error: Exception, wording: Wording) -> str:
    """A refusal: the error's own message, which names the rule and the fix."""
    if isinstance(error, SpecError):  # user text in it: markdown escaped, mentions defused
        text = format_refusal(error).replace("**Not queued:**", f"**{wording.refused}:**", 1)
    elif isinstance(error, STORAGE_REFUSALS):  # these quote a typed id or name, a pause reason
        text = f"**{wording.refused}:** {as_typed(str(error))}"
    else:
        text = f"**{wording.refused}:** {error}"
    return text[:MESSAGE_LIMIT]


def as_typed(text: str) -> str:
    """Text someone typed (a pause reason, an id), shown as typed: markdown escaped, mentions
    defused."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def failure_text(reference: int, wording: Wording) -> str:
    """The generic line for anything unexpected; `reference` finds the logged traceback."""
    return (f"**{wording.failed}:** something went wrong on our side (reference `{reference}`); "
            f"{wording.advice}")[:MESSAGE_LIMIT]


async def answer_error(interaction: discord.Interaction, error: Exception,
                       wording: Optional[Wording] = None) -> None:
    """Answer what a command or button raised, only to the caller. `wording`: the command's
    (from its extras) unless given."""
    wording = wording or command_wording(interaction.command)
    if isinstance(error, REFUSALS):
        text = refusal_text(error, wording)
    elif isinstance(error, DATABASE_AWAY):  # the engine and the poster log it too: no traceback
        log.warning("%s: %s (interaction %s)", _source(interaction), error, interaction.id)
        text = f"**{wording.failed}:** {DATABASE_AWAY_TEXT}"[:MESSAGE_LIMIT]
    else:
        log.error("%s failed (interaction %s, user %s)", _source(interaction), interaction.id,
                  interaction.user.id, exc_info=error)
        text = failure_text(interaction.id, wording)
    try:
        await say(interaction, text)
    except discord.HTTPException:
        log.exception("could not answer interaction %s", interaction.id)


def _source(interaction: discord.Interaction) -> str:
    """'/job show', 'menu Describe image' or 'button disco:cancel:<job>': what failed, for the log."""
    if isinstance(interaction.command, app_commands.ContextMenu):
        return f"menu {interaction.command.name}"
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    return f"button {(interaction.data or {}).get('custom_id')}"


async def think(interaction: discord.Interaction, *, private: bool = False) -> None:
    """Defer with Discord's "thinking…" message (the 3 s answer window), remembering whether
    everyone sees it, which decides how `say` answers privately later."""
    await interaction.response.defer(ephemeral=private, thinking=True)
    interaction.extras[THINKING] = "private" if private else "public"


async def say(interaction: discord.Interaction, text: str) -> None:
    """An answer only the caller sees, whether or not the interaction was answered already."""
    text = text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 10] + "\n…"
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        return
    if _public_thinking(interaction):
        await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def _public_thinking(interaction: discord.Interaction) -> bool:
    """Whether the response is a "thinking…" message everyone sees. One not made by `think`
    counts as public: deleting it is the choice that keeps the answer private."""
    return (interaction.response.type is discord.InteractionResponseType.deferred_channel_message
            and interaction.extras.get(THINKING) != "private")


Callback = Callable[[Any, discord.Interaction], Awaitable[None]]


def answers_errors(callback: Callback) -> Callback:
    """For a `DynamicItem`'s callback: what it raises goes to `answer_error` with the item's
    `wording` (discord.py would only log it: a dynamic item has no `View.on_error`)."""
    @functools.wraps(callback)
    async def answered(item: Any, interaction: discord.Interaction) -> None:
        try:
            await callback(item, interaction)
        except Exception as error:
            await answer_error(interaction, error, getattr(item, "wording", None))
    return answered


class AnsweringView(discord.ui.View):
    """A view whose items' errors get the same answer as a command's."""

    async def on_error(self, interaction: discord.Interaction, error: Exception,
                       item: discord.ui.Item[Any], /) -> None:
        await answer_error(interaction, error, getattr(item, "wording", None))
