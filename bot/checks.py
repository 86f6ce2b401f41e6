"""Who may do what: the permission checks shared by the cogs and the buttons.

They read the permissions Discord computed for the caller of this interaction
(`interaction.permissions`), never a role list. A command's `default_permissions` only hides it
in the client, and a server can override that under Integrations, so every privileged action is
checked here as well. A failed check raises `NotAdmin`, an `app_commands.CheckFailure`, which
`bot.answers.answer_error` shows as a refusal naming the rule and the fix. A job named by a
button, a menu or a command is fetched through `job_of_this_server`, the one guard that keeps
each server's jobs to itself.
"""
from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands

from commands.errors import CommandError
from storage import Job


class NotAdmin(app_commands.CheckFailure):
    """The caller lacks Manage Server; the message says what needed it and what to do instead."""


def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server (or Administrator) as Discord computed it for this interaction's caller."""
    perms = interaction.permissions
    return interaction.guild_id is not None and (perms.manage_guild or perms.administrator)


def require_admin(interaction: discord.Interaction, refusal: str) -> None:
    """Raise `NotAdmin(refusal)` unless the caller is an admin; `refusal` names the rule
    (manage_guild) and the fix."""
    if not is_admin(interaction):
        raise NotAdmin(refusal)


def is_moderator(interaction: discord.Interaction) -> bool:
    """Manage Messages in this channel: the permission Discord itself asks for to delete posts."""
    return bool(interaction.permissions.manage_messages)


def rules_channel_id(interaction: discord.Interaction) -> int:
    """The channel whose rules hold here (allowed channels, a channel's defaults): a thread's
    parent, so a thread under an allowed channel is allowed too; else the channel itself."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id:
        return channel.parent_id
    return interaction.channel_id


def bot_can_post(interaction: discord.Interaction) -> bool:
    """Whether the bot may post a result where this interaction happened: see the channel, send
    messages (in a thread: in threads) and attach files, as Discord computed it for the bot here
    (`interaction.app_permissions`). A member may use commands where the bot may not post."""
    perms = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    send = perms.send_messages_in_threads if in_thread else perms.send_messages
    return bool(perms.view_channel and send and perms.attach_files)


CANNOT_POST = ("I may not post messages or files in this channel, so your result could not be shown here (rule: "
               "bot_can_post); use a channel where I can post, ask an admin to let me Send Messages and Attach "
               "Files here, or choose /disco-settings notify:dm to get your results by DM")


# A job id (a ULID: 26 letters and digits) within what a member pasted.
_JOB_ID = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{26}(?![0-9A-Za-z])")


def typed_job_id(text: str) -> str:
    """The job id in what a member typed or pasted: "`01J…`" or "job `01J…`" copied from a
    message's text, else the text as it is (storage refuses it naming what was typed)."""
    match = _JOB_ID.search(text)
    return match.group(0) if match else text


async def job_of_this_server(db: Any, interaction: discord.Interaction, job_id: str, *, fix: str) -> Job:
    """The job `job_id` (as typed: `typed_job_id`), refused (rule same_server) unless it was
    made in the interaction's server: a job id pasted or a button forwarded into another server
    must not reach its files, settings or quota there. `fix` ends the refusal ("use the buttons
    there")."""
    job = await db.jobs.get(typed_job_id(job_id))
    if job.guild_id != str(interaction.guild_id):
        raise CommandError(f"job {job.id} belongs to another server (rule: same_server); {fix}", "job",
                           rule="same_server")
    return job
