"""`DiscoTree`: the bot's command tree, whose `on_error` is the one error path of the slash commands
and the message menus (bot/cogs/apps.py).

Commands raise and do not catch. discord.py calls the tree's `on_error` for every command (or
context menu) that failed: what the command raised arrives wrapped in `CommandInvokeError` (unwrapped here), a
failed check as the `CheckFailure` itself. `bot.answers.answer_error` then answers the caller —
the refusal's rule and fix, or the generic line with a reference — the same way it answers for
the buttons. Installed with `DiscoBot(tree_cls=…)`.
"""
from __future__ import annotations

import discord
from discord import app_commands

from bot.answers import answer_error


class DiscoTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError, /) -> None:
        if isinstance(error, app_commands.CommandInvokeError):
            await answer_error(interaction, error.original)
        else:
            await answer_error(interaction, error)
