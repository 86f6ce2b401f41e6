"""Who may do what: the permission checks shared by the cogs and the buttons.

They read the permissions Discord computed for the caller of this interaction
(`interaction.permissions`), never a role list. A command's `default_permissions` only hides it
in the client, and a server can override that under Integrations, so every privileged action is
checked here as well. A failed check raises `NotAdmin`, an `app_commands.CheckFailure`, which
`bot.answers.answer_error` shows as a refusal naming the rule and the fix.
"""
from __future__ import annotations

import discord
from discord import app_commands


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
