"""`/preset`: named render settings, a member's own or (for admins) the whole server's.

A preset is stored as a JSON dict of the `RenderSpec` keys it sets, in canonical form, and is
checked when saved (an unknown key is refused naming the closest known key) and again when used,
since specs evolve. Images are never part of a preset: they come from attachments only.

`/preset use` queues through the same path as `/disco` (`bot.queueing.enqueue_options`: banned
words, limits, caps, quota, pause, channel). The preset reaches it as the `settings` text that
`commands.echo.recipe_options` writes for exactly this kind of round trip, built against the
defaults the member's job starts from here (the server's, the channel's, their own) so that
only what the preset changes is sent. The precedence stays that of `/disco`: server, channel
and the member's own defaults < preset < flags in the prompt < explicit options. Refusals are raised
and answered by the command tree's error path (bot/tree.py): "Refused" here, "Not queued" for
`/preset use`.
"""
from __future__ import annotations

import json
import logging
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import NO_MENTIONS, NOT_QUEUED, SETTINGS, as_typed, say, think
from bot.checks import require_admin
from bot.params import Images, PresetName, Prompt, Seed, Settings, preset_choices
from bot.queueing import caller_defaults, enqueue_options
from bot.settings_text import paged
from commands.echo import recipe_options
from commands.defaults import BOT_DEFAULTS
from commands.job_options import DiscoOptions
from commands.prompt_syntax import ATTACHMENT_ONLY
from engine.errors import SpecError
from engine.spec.overrides import parse_set_options
from engine.spec.render import SCHEMA_VERSION, RenderSpec
from engine.spec.schedules import format_number

log = logging.getLogger("disco.bot.presets")

SCOPES = [app_commands.Choice(name="me: only you", value="me"),
          app_commands.Choice(name="server: everyone here (needs Manage Server)", value="server")]
ADMIN_ONLY = ("server-wide presets need the Manage Server permission (rule: manage_guild); save it "
              "with scope `me`, or ask a server admin")


def preset_settings(text: str) -> dict:
    """The checked, canonical settings a preset stores; SpecError names the problem."""
    values = parse_set_options(text)
    if not values:
        raise SpecError("settings: nothing to save — give key=value pairs, e.g. \"steps=150; "
                        "clip_guidance_scale=8000\"", "settings")
    for key in ATTACHMENT_ONLY:
        if key in values:
            raise SpecError(f"{key}: a preset cannot hold images (they come from attachments "
                            f"only); attach it with /disco's image options instead", key)
    spec = RenderSpec.from_dict({**BOT_DEFAULTS, **values}).to_dict()
    return {key: spec[key] for key in values if key in spec}


def summary(spec_json: str, limit: int = 160) -> str:
    """`key=value` pairs of a stored preset, short enough for one list line, shown as typed (a
    prompt in it neither formats nor pings)."""
    try:
        values = json.loads(spec_json)
    except ValueError:
        return "(unreadable: save it again)"
    text = "; ".join(f"{key}={_typed(value)}" for key, value in sorted(values.items()))
    return as_typed(text if len(text) <= limit else text[:limit - 1] + "…")


def _typed(value: object) -> str:
    """A stored value as it would be typed: 7000, not 7000.0."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_number(value)
    return json.dumps(value, ensure_ascii=False)


@app_commands.guild_only()
class PresetCog(commands.GroupCog, group_name="preset",
                group_description="Named Disco Diffusion settings: save, use, list, delete",
                group_extras=SETTINGS.extras()):
    def __init__(self, bot: commands.Bot, db) -> None:
        super().__init__()
        self.bot = bot
        self.db = db

    @app_commands.command(name="save", description="Save settings under a name")
    @app_commands.describe(name="1-32 letters, digits, - or _", settings='"key=value; key=value"',
                           scope="yours (default) or the whole server's")
    @app_commands.choices(scope=SCOPES)
    async def save(self, interaction: discord.Interaction, name: PresetName, settings: Settings,
                   scope: Optional[str] = None) -> None:
        server = scope == "server"
        if server:
            require_admin(interaction, ADMIN_ONLY)
        values = preset_settings(settings)
        preset = await self.db.presets.save(
            interaction.guild_id, name, json.dumps(values, sort_keys=True), SCHEMA_VERSION,
            owner_id=None if server else interaction.user.id, actor_id=interaction.user.id)
        whose = "the server's" if server else "your"
        await say(interaction, f"**Saved** {whose} preset `{preset.name}`: {summary(preset.spec_json)}\n"
                               f"Use it with `/preset use name:{preset.name} prompt:…`")

    @app_commands.command(name="use", description="Paint with a preset (like /disco)", extras=NOT_QUEUED.extras())
    @app_commands.describe(name="the preset", prompt="what to paint (the preset's prompts if left out)",
                           seed="the noise seed", n="how many images")
    @app_commands.autocomplete(name=preset_choices)
    async def use(self, interaction: discord.Interaction, name: PresetName, prompt: Optional[Prompt] = None,
                  seed: Optional[Seed] = None, n: Optional[Images] = None) -> None:
        await think(interaction)
        preset = await self.db.presets.get(interaction.guild_id, name, owner_id=interaction.user.id)
        values = json.loads(preset.spec_json)
        if not isinstance(values, dict):
            raise SpecError(f"preset '{preset.name}' is not readable; save it again", "preset")
        defaults = await caller_defaults(self.bot, interaction)
        spec = RenderSpec.from_dict({**BOT_DEFAULTS, **defaults, **values})
        recipe = recipe_options(spec, defaults=defaults)
        options = DiscoOptions(prompt=prompt or recipe.get("prompt", ""), seed=seed, n=n,
                               settings=recipe.get("settings"))
        job, text = await enqueue_options(self.bot, interaction, options)
        log.info("queued job %s from preset %s for user %s", job.id, preset.name, job.user_id)
        await interaction.followup.send(f"Preset `{preset.name}` · {text}"[:2000], allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="list", description="Your presets and the server's")
    @app_commands.describe(page="which page of a long list (default 1)")
    async def list_(self, interaction: discord.Interaction,
                    page: Optional[app_commands.Range[int, 1, 100]] = None) -> None:
        presets = await self.db.presets.list(interaction.guild_id, owner_id=interaction.user.id)
        if not presets:
            await say(interaction, "No presets yet: save one with `/preset save`.")
            return
        lines = [f"• `{p.name}` ({'yours' if p.owner_id else 'server'}): {summary(p.spec_json)}"
                 for p in presets]
        await say(interaction, paged(lines, page or 1, "\n", "/preset list"))

    @app_commands.command(name="delete", description="Delete a preset")
    @app_commands.describe(name="the preset", scope="yours (default) or the server's")
    @app_commands.choices(scope=SCOPES)
    @app_commands.autocomplete(name=preset_choices)
    async def delete(self, interaction: discord.Interaction, name: PresetName,
                     scope: Optional[str] = None) -> None:
        server = scope == "server"
        if server:
            require_admin(interaction, ADMIN_ONLY)
        deleted = await self.db.presets.delete(interaction.guild_id, name,
                                               owner_id=None if server else interaction.user.id,
                                               actor_id=interaction.user.id)
        whose = "the server's" if server else "your"
        if deleted:
            await say(interaction, f"**Deleted** {whose} preset `{name.strip().lower()}`.")
        else:
            await say(interaction, f"**Unchanged:** {whose} presets have no `{name.strip().lower()}`; "
                                   f"see `/preset list` (server presets need scope `server`)")


async def setup(bot: commands.Bot) -> None:
    """Extension entry point (needs bot.db, opened in setup_hook before the cogs load)."""
    await bot.add_cog(PresetCog(bot, bot.db))
