"""`/disco-admin`: a server's admins set quotas, limits, allowed channels, paused intake, banned
words, render defaults (the server's and per channel), the diffusion and CLIP models allowed,
refund a job's GPU time, read the audit log, see the engines working on the queue
(`workers`, the same table as `disco workers`) and the server's usage statistics (`stats`, in
bot/admin_stats.py, mixed in).

It is its own root command (not `/disco admin …`): Discord applies `default_member_permissions`
only to root commands, and a root command with subcommands cannot itself be run, so `/disco`
could not both paint and hold an admin group. Nesting is root → group → subcommand, Discord's
maximum.

`default_permissions(manage_guild=True)` only hides the command in the client, and a server can
override that under Integrations, so every subcommand is also checked here (`interaction_check`,
with bot.checks) against the permissions Discord computed for the caller. That refusal, like any
error of these commands, is answered by the command tree's error path (bot/tree.py). Every
change goes through storage with `actor_id`, which writes the audit entry in the same
transaction as the change. Answers are ephemeral: admin chatter does not belong in the render
channel.
"""
from __future__ import annotations

from typing import Optional, Union

import discord
from discord import app_commands
from discord.ext import commands

from bot.admin_stats import StatsCommand
from bot.answers import ADMIN, as_typed, say, think
from bot.checks import job_of_this_server, require_admin, rules_channel_id
from bot.params import Images, JobId, Settings, Side
from bot.settings_text import (audit_line, audit_page, channels_text, limits_text, paged, seconds_text,
                               subject_text, words_page)
from commands.defaults import bot_baseline
from commands.echo import code_span
from commands.fleet import fleet_table, stranded_lines
from commands.job_options import JobLimits
from commands.moderation import check_banned_word
from commands.server_rules import (check_allowed_models, defaults_over_limits, defaults_text, parse_defaults,
                                   parse_model_list, rules_lines)
from engine.errors import SpecError
from storage import ACTIVE
from storage.guilds import LIMIT_NAMES

SCOPES = [app_commands.Choice(name="user: one member", value="user"),
          app_commands.Choice(name="role: members with a role (most generous role wins)", value="role"),
          app_commands.Choice(name="member: every member without a user or role quota", value="member"),
          app_commands.Choice(name="guild: the whole server's total", value="guild")]
WINDOWS = [app_commands.Choice(name="day (resets 00:00 UTC)", value="day"),
           app_commands.Choice(name="month (resets on the 1st, 00:00 UTC)", value="month")]
LIMIT_CHOICES = [app_commands.Choice(name=name, value=name) for name in LIMIT_NAMES]
Pixels = app_commands.Range[int, Side.min_value ** 2, Side.max_value ** 2]  # the smallest and largest image
MODEL_KINDS = [app_commands.Choice(name="diffusion models (/disco model:)", value="diffusion"),
               app_commands.Choice(name="CLIP models (clip_models)", value="clip")]
NOT_ADMIN = ("/disco-admin needs the Manage Server permission (rule: manage_guild); ask a server admin "
             "to make this change")


# A channel whose rules admins set; a forum's posts, like a text channel's threads, follow them.
RulesChannel = Union[discord.TextChannel, discord.ForumChannel]


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(StatsCommand, commands.GroupCog, group_name="disco-admin",
               group_description="Server settings for Disco Diffusion (needs Manage Server)",
               group_extras=ADMIN.extras()):
    quota = app_commands.Group(name="quota", description="GPU-time budgets per day or month")
    limits = app_commands.Group(name="limits", description="Size and queue limits for each job")
    channels = app_commands.Group(name="channels", description="Where jobs may be queued")
    intake = app_commands.Group(name="intake", description="Pause or resume new jobs")
    banned = app_commands.Group(name="banned-words", description="Words refused in prompts")
    defaults = app_commands.Group(name="defaults", description="Settings every job starts from here")
    models = app_commands.Group(name="models", description="Which diffusion and CLIP models are allowed")

    def __init__(self, bot: commands.Bot, db) -> None:
        super().__init__()
        self.bot = bot
        self.db = db

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        # Called by discord.py before every subcommand of this cog, nested groups included.
        require_admin(interaction, NOT_ADMIN)
        # Every answer is private and comes through `say`; deferring first keeps a slow database
        # (a PostgreSQL server restarting) from turning into "The application did not respond".
        await think(interaction, private=True)
        return True

    # ---- quota -----------------------------------------------------------------------------

    @quota.command(name="set", description="Set a GPU-time budget (give minutes or seconds)")
    @app_commands.describe(scope="who the budget applies to", window="per day or per month",
                           minutes="the budget in GPU-minutes", seconds="the budget in GPU-seconds",
                           user="the member (scope user)", role="the role (scope role)")
    @app_commands.choices(scope=SCOPES, window=WINDOWS)
    async def quota_set(self, interaction: discord.Interaction, scope: str, window: str,
                        minutes: Optional[app_commands.Range[float, 0.0, 1e8]] = None,
                        seconds: Optional[app_commands.Range[float, 0.0, 1e10]] = None,
                        user: Optional[discord.Member] = None,
                        role: Optional[discord.Role] = None) -> None:
        if (minutes is None) == (seconds is None):
            await say(interaction, "**Refused:** give exactly one of `minutes` or `seconds` (the "
                                   "budget); e.g. `minutes:30`")
            return
        amount = seconds if seconds is not None else minutes * 60
        subject = await self._subject(interaction, scope, user, role)
        if subject is False:
            return
        await self.db.quotas.set_limit(interaction.guild_id, scope, window, amount,
                                       subject_id=subject, actor_id=interaction.user.id)
        await say(interaction, f"**Quota set:** {subject_text(scope, subject)} — {seconds_text(amount)} "
                               f"per {window}.\n{await self._quota_lines(interaction.guild_id)}")

    @quota.command(name="clear", description="Remove a GPU-time budget")
    @app_commands.describe(scope="who the budget applied to", window="per day or per month",
                           user="the member (scope user)", role="the role (scope role)")
    @app_commands.choices(scope=SCOPES, window=WINDOWS)
    async def quota_clear(self, interaction: discord.Interaction, scope: str, window: str,
                          user: Optional[discord.Member] = None,
                          role: Optional[discord.Role] = None) -> None:
        subject = await self._subject(interaction, scope, user, role)
        if subject is False:
            return
        if not any((q.scope, q.subject_id, q.window) == (scope, subject, window)
                   for q in await self.db.quotas.limits(interaction.guild_id)):
            await say(interaction, f"**Unchanged:** {subject_text(scope, subject)} has no budget per "
                                   f"{window}.\n{await self._quota_lines(interaction.guild_id)}")
            return
        await self.db.quotas.set_limit(interaction.guild_id, scope, window, None,
                                       subject_id=subject, actor_id=interaction.user.id)
        await say(interaction, f"**Quota cleared:** {subject_text(scope, subject)} per {window}.\n"
                               f"{await self._quota_lines(interaction.guild_id)}")

    @quota.command(name="show", description="Show the budgets, and one member's use")
    @app_commands.describe(user="also show this member's use and remaining budget",
                           page="which page of a long list of budgets (default 1)")
    async def quota_show(self, interaction: discord.Interaction,
                         user: Optional[discord.Member] = None,
                         page: Optional[app_commands.Range[int, 1, 1000]] = None) -> None:
        text = ""
        if user is not None:  # first: a long list of budgets must not push it out of the answer
            status = await self.db.quotas.status(interaction.guild_id, user.id,
                                                 [r.id for r in getattr(user, "roles", [])])
            for use in status.values():
                limit = "unlimited" if use.user_limit is None else seconds_text(use.user_limit)
                text += (f"{user.mention} this {use.window}: used {seconds_text(use.user_used)} of "
                         f"{limit}; resets <t:{int(use.resets_at)}:R>\n")
        await say(interaction, text + await self._quota_lines(interaction.guild_id, page or 1))

    @commands.Cog.listener()
    async def on_guild_role_delete(self, role: discord.Role) -> None:
        """A deleted role's budgets go with it (audited as the bot's): its id never returns, and
        Discord offers only existing roles to `quota clear`."""
        for q in await self.db.quotas.limits(role.guild.id):
            if (q.scope, q.subject_id) == ("role", str(role.id)):
                await self.db.quotas.set_limit(role.guild.id, "role", q.window, None, subject_id=q.subject_id)

    async def _subject(self, interaction: discord.Interaction, scope: str,
                       user: Optional[discord.Member], role: Optional[discord.Role]):
        """The subject id for the scope, or False after refusing a mismatched option."""
        wanted = {"user": user, "role": role}.get(scope)
        extra = [name for name, value in (("user", user), ("role", role))
                 if value is not None and name != scope]
        if scope in ("user", "role") and wanted is None:
            await say(interaction, f"**Refused:** scope `{scope}` needs the `{scope}` option (whose "
                                   f"budget it is)")
            return False
        if extra:
            await say(interaction, f"**Refused:** the `{extra[0]}` option does not apply to scope "
                                   f"`{scope}`; use scope `{extra[0]}` for it, or leave it out")
            return False
        return None if wanted is None else str(wanted.id)

    async def _quota_lines(self, guild_id: int, page: int = 1) -> str:
        limits = await self.db.quotas.limits(guild_id)
        if not limits:
            return "No GPU-time budgets: everyone is unlimited."
        lines = [f"• {subject_text(q.scope, q.subject_id)}: {seconds_text(q.seconds)} per {q.window}"
                 for q in limits]
        return "Budgets:\n" + paged(lines, page, "\n", "/disco-admin quota show")

    # ---- limits ----------------------------------------------------------------------------

    @limits.command(name="set", description="Change per-job and queue limits")
    @app_commands.describe(
        max_steps="most diffusion steps per job", max_pixels="most pixels (width × height) per image",
        max_width="with max_height: sets max_pixels to their product",
        max_height="with max_width: sets max_pixels to their product",
        max_cuts="most CLIP cuts per step (all cut batches)", max_frames="most frames per animation",
        max_queued_per_user="most waiting jobs per member", max_running_per_user="most running jobs per member",
        max_queued_per_guild="most waiting jobs in this server", max_images="most images per job (n)",
        reset="put one limit back to its default")
    @app_commands.choices(reset=LIMIT_CHOICES)
    async def limits_set(self, interaction: discord.Interaction,
                         max_steps: Optional[app_commands.Range[int, 2, 10000]] = None,
                         max_pixels: Optional[Pixels] = None,
                         max_width: Optional[Side] = None,
                         max_height: Optional[Side] = None,
                         max_cuts: Optional[app_commands.Range[int, 1, 1024]] = None,
                         max_frames: Optional[app_commands.Range[int, 1, 100000]] = None,
                         max_queued_per_user: Optional[app_commands.Range[int, 1, 1000]] = None,
                         max_running_per_user: Optional[app_commands.Range[int, 1, 100]] = None,
                         max_queued_per_guild: Optional[app_commands.Range[int, 1, 100000]] = None,
                         max_images: Optional[Images] = None,
                         reset: Optional[str] = None) -> None:
        if (max_width is None) != (max_height is None):
            await say(interaction, "**Refused:** give `max_width` and `max_height` together (they set "
                                   "max_pixels = width × height), or give `max_pixels` alone")
            return
        if max_width is not None:
            if max_pixels is not None:
                await say(interaction, "**Refused:** give either `max_pixels` or `max_width`+`max_height`, "
                                       "not both")
                return
            max_pixels = max_width * max_height
        changes = {name: value for name, value in (
            ("max_steps", max_steps), ("max_pixels", max_pixels), ("max_cuts", max_cuts),
            ("max_frames", max_frames), ("max_queued_per_user", max_queued_per_user),
            ("max_running_per_user", max_running_per_user),
            ("max_queued_per_guild", max_queued_per_guild), ("max_images", max_images))
            if value is not None}
        if reset is not None:
            if reset in changes:
                await say(interaction, f"**Refused:** `{reset}` is both set and reset; choose one")
                return
            changes[reset] = None  # storage: None = back to the default
        if not changes:
            await say(interaction, "**Refused:** nothing to change; give at least one limit, e.g. "
                                   "`max_steps:250`")
            return
        settings = await self.db.guilds.set_limits(interaction.guild_id, actor_id=interaction.user.id,
                                                   **changes)
        scopes = {"the server's defaults": settings.defaults, **{
            f"<#{cid}>'s defaults": {**settings.defaults, **own} for cid, own in settings.channel_defaults.items()}}
        warning = defaults_over_limits(scopes, JobLimits.from_guild(settings.limits))
        await say(interaction, f"**Limits updated** ({', '.join(changes)}):\n{limits_text(settings)}"
                  + (f"\n{warning}" if warning else "")
                  + await self._waiting_note(interaction.guild_id, "new jobs follow these limits"))

    @limits.command(name="show", description="Show this server's limits, channels and intake")
    async def limits_show(self, interaction: discord.Interaction) -> None:
        settings = await self.db.guilds.get(interaction.guild_id)
        intake = (f"Intake **paused**: {as_typed(settings.pause_reason or 'no reason given')}"
                  if settings.intake_paused else "Intake open")
        await say(interaction, f"{limits_text(settings)}\n{channels_text(settings)}\n{intake}")

    # ---- channels --------------------------------------------------------------------------

    @channels.command(name="allow", description="Allow jobs in a channel (then only in allowed ones)")
    @app_commands.describe(channel="the channel to allow")
    async def channels_allow(self, interaction: discord.Interaction, channel: RulesChannel) -> None:
        await self.db.guilds.allow_channel(interaction.guild_id, channel.id, actor_id=interaction.user.id)
        settings = await self.db.guilds.get(interaction.guild_id)
        await say(interaction, f"**Allowed** {channel.mention}. {channels_text(settings)}.")

    @channels.command(name="disallow", description="Remove a channel from the allowed list")
    @app_commands.describe(channel="the channel to remove")
    async def channels_disallow(self, interaction: discord.Interaction,
                                channel: RulesChannel) -> None:
        settings = await self.db.guilds.get(interaction.guild_id)
        if str(channel.id) not in settings.allowed_channel_ids:
            await say(interaction, f"**Unchanged:** {channel.mention} is not on the allowed list. "
                                   f"{channels_text(settings)}.")
            return
        await self.db.guilds.disallow_channel(interaction.guild_id, channel.id, actor_id=interaction.user.id)
        settings = await self.db.guilds.get(interaction.guild_id)
        await say(interaction, f"**Removed** {channel.mention}. {channels_text(settings)}.")

    @channels.command(name="clear", description="Allow every channel again (empties the list, deleted channels too)")
    async def channels_clear(self, interaction: discord.Interaction) -> None:
        # A deleted channel cannot be picked in `disallow`'s channel option, so this is the way
        # to take one off the list.
        settings = await self.db.guilds.get(interaction.guild_id)
        for channel_id in sorted(settings.allowed_channel_ids):
            await self.db.guilds.disallow_channel(interaction.guild_id, channel_id,
                                                  actor_id=interaction.user.id)
        head = "**Cleared**" if settings.allowed_channel_ids else "**Unchanged:** the list was empty"
        await say(interaction, f"{head}. {channels_text(await self.db.guilds.get(interaction.guild_id))}.")

    @channels.command(name="list", description="List the channels where jobs are allowed")
    async def channels_list(self, interaction: discord.Interaction) -> None:
        await say(interaction, channels_text(await self.db.guilds.get(interaction.guild_id)) + ".")

    # ---- intake ----------------------------------------------------------------------------

    @intake.command(name="pause", description="Refuse new jobs (queued and running ones carry on)")
    @app_commands.describe(reason="shown to members whose new job is refused")
    async def intake_pause(self, interaction: discord.Interaction,
                           reason: Optional[app_commands.Range[str, 1, 200]] = None) -> None:
        await self.db.guilds.pause_intake(interaction.guild_id, reason or "", actor_id=interaction.user.id)
        counts = await self.db.jobs.active_counts(interaction.guild_id)
        await say(interaction, f"**Intake paused**: {as_typed(reason or 'no reason given')}. New jobs are "
                               f"refused until `/disco-admin intake resume`; the {counts['queued']} "
                               f"queued and {counts['running']} rendering carry on (their members can "
                               f"/cancel them).")

    @intake.command(name="resume", description="Accept new jobs again")
    async def intake_resume(self, interaction: discord.Interaction) -> None:
        await self.db.guilds.resume_intake(interaction.guild_id, actor_id=interaction.user.id)
        await say(interaction, "**Intake open**: new jobs are accepted.")

    # ---- banned words ----------------------------------------------------------------------

    @banned.command(name="add", description="Refuse prompts containing a word or phrase")
    @app_commands.describe(word="a word or phrase, matched whole in any case, with accents, full-width or spaced-out letters")
    async def banned_add(self, interaction: discord.Interaction,
                         word: app_commands.Range[str, 1, 100]) -> None:
        added = await self.db.guilds.add_banned_word(interaction.guild_id, check_banned_word(word),
                                                     actor_id=interaction.user.id)
        head = "**Banned**" if added else "**Unchanged:** already banned:"
        await say(interaction, f"{head} {code_span(word.lower())}. "
                               f"{await self._words(interaction.guild_id)}")

    @banned.command(name="remove", description="Allow a banned word again")
    @app_commands.describe(word="the banned word or phrase")
    async def banned_remove(self, interaction: discord.Interaction,
                            word: app_commands.Range[str, 1, 100]) -> None:
        removed = await self.db.guilds.remove_banned_word(interaction.guild_id, word,
                                                          actor_id=interaction.user.id)
        head = "**Removed**" if removed else "**Unchanged:** not banned:"
        await say(interaction, f"{head} {code_span(word.lower())}. "
                               f"{await self._words(interaction.guild_id)}")

    @banned.command(name="list", description="List the banned words")
    @app_commands.describe(page="which page of a long list (default 1)")
    async def banned_list(self, interaction: discord.Interaction,
                          page: Optional[app_commands.Range[int, 1, 1000]] = None) -> None:
        await say(interaction, await self._words(interaction.guild_id, page or 1))

    async def _words(self, guild_id: int, page: int = 1) -> str:
        return words_page([code_span(w) for w in (await self.db.guilds.get(guild_id)).banned_words], page)

    # ---- defaults --------------------------------------------------------------------------

    @defaults.command(name="set", description="Add settings every job starts from (users' options win)")
    @app_commands.describe(settings='DD settings as "key=value; key=value", e.g. "steps=150; eta=0.5"',
                           channel="only in this channel (over the server's defaults)")
    async def defaults_set(self, interaction: discord.Interaction, settings: Settings,
                           channel: Optional[RulesChannel] = None) -> None:
        guild = await self.db.guilds.get(interaction.guild_id)
        current = self._scope_defaults(guild, channel)
        merged = {**current, **parse_defaults(settings)}
        # The server's and this channel's defaults must make a valid job together.
        combined = {**guild.defaults, **merged} if channel is not None else merged
        check_allowed_models(bot_baseline(combined), guild.allowed_models, guild.allowed_clip_models)
        guild = await self.db.guilds.set_defaults(interaction.guild_id, merged, actor_id=interaction.user.id,
                                                  channel_id=channel.id if channel else None)
        scope = {(f"<#{channel.id}>'s defaults" if channel else "the server's defaults"): combined}
        warning = defaults_over_limits(scope, JobLimits.from_guild(guild.limits))
        await say(interaction, f"**Defaults set** for {self._scope_name(channel)}: "
                               f"{defaults_text(merged)}\n{self._rules(guild, channel)}"
                               + (f"\n{warning}" if warning else ""))

    @defaults.command(name="reset", description="Remove one default setting, or all of them")
    @app_commands.describe(setting="the setting to remove (default: all)",
                           channel="this channel's own defaults (default: the server's)")
    async def defaults_reset(self, interaction: discord.Interaction,
                             setting: Optional[app_commands.Range[str, 1, 40]] = None,
                             channel: Optional[RulesChannel] = None) -> None:
        guild = await self.db.guilds.get(interaction.guild_id)
        current = self._scope_defaults(guild, channel)
        key = setting.strip().lower() if setting else None
        if key is not None and key not in current:
            shown = ", ".join(sorted(current)) or "none"
            await say(interaction, f"**Unchanged:** `{key}` is not a default of {self._scope_name(channel)} "
                                   f"(its defaults: {shown})")
            return
        kept = {k: v for k, v in current.items() if key is not None and k != key}
        guild = await self.db.guilds.set_defaults(interaction.guild_id, kept, actor_id=interaction.user.id,
                                                  channel_id=channel.id if channel else None)
        what = f"`{key}`" if key else "all defaults"
        await say(interaction, f"**Reset** {what} of {self._scope_name(channel)}.\n"
                               f"{self._rules(guild, channel)}")

    @defaults_reset.autocomplete("setting")
    async def _setting_names(self, interaction: discord.Interaction,
                             current: str) -> list[app_commands.Choice[str]]:
        """The defaults that can be reset: the chosen channel's own, else the server's."""
        guild = await self.db.guilds.get(interaction.guild_id)
        names = sorted(self._scope_defaults(guild, getattr(interaction.namespace, "channel", None)))
        return [app_commands.Choice(name=n, value=n) for n in names if current.strip().lower() in n][:25]

    @defaults.command(name="show", description="Show the server's defaults and a channel's own")
    @app_commands.describe(channel="the channel whose defaults to show (default: this one)")
    async def defaults_show(self, interaction: discord.Interaction,
                            channel: Optional[RulesChannel] = None) -> None:
        guild = await self.db.guilds.get(interaction.guild_id)
        await say(interaction, self._rules(guild, channel))

    def _scope_defaults(self, guild, channel: Optional[RulesChannel]) -> dict:
        if channel is None:
            return dict(guild.defaults)
        return dict(guild.channel_defaults.get(str(channel.id), {}))

    @staticmethod
    def _scope_name(channel: Optional[RulesChannel]) -> str:
        return channel.mention if channel is not None else "the server"

    def _rules(self, guild, channel: Optional[RulesChannel] = None,
               channel_id: Optional[int] = None) -> str:
        cid = str(channel.id if channel is not None else channel_id)
        return "\n".join(rules_lines(guild.defaults, guild.channel_defaults.get(cid, {}),
                                     guild.allowed_models, guild.allowed_clip_models))

    # ---- models ----------------------------------------------------------------------------

    @models.command(name="allow", description="Allow only these models (or every model again)")
    @app_commands.describe(kind="diffusion or CLIP models",
                           names='model names separated by commas, or "every" to allow them all')
    @app_commands.choices(kind=MODEL_KINDS)
    async def models_allow(self, interaction: discord.Interaction, kind: str,
                           names: app_commands.Range[str, 1, 2000]) -> None:
        allowed = parse_model_list(names, kind)
        guild = await self.db.guilds.set_allowed_models(interaction.guild_id, kind, allowed,
                                                        actor_id=interaction.user.id)
        what = "every model" if allowed is None else ", ".join(allowed)
        await say(interaction, f"**Allowed {kind} models:** {what}. Jobs using another one are refused "
                               f"when queued.{self._defaults_warning(guild)}"
                               f"{await self._waiting_note(interaction.guild_id, 'new jobs are checked')}\n"
                               f"{self._rules(guild, channel_id=rules_channel_id(interaction))}")

    async def _waiting_note(self, guild_id: int, rule: str) -> str:
        """A rule checked when a job is queued does not reach the jobs already waiting: say so."""
        waiting = (await self.db.jobs.active_counts(guild_id))["queued"]
        if not waiting:
            return ""
        return (f"\nOnly {rule}: the {waiting} job(s) already waiting run as they were queued (their "
                f"members can /cancel them).")

    @staticmethod
    def _defaults_warning(guild) -> str:
        """Say so when a job that sets nothing would now be refused (DD's default CLIP models
        include ViT-B-16, for one)."""
        try:
            check_allowed_models(bot_baseline(guild.defaults), guild.allowed_models,
                                 guild.allowed_clip_models)
        except SpecError as err:
            return (f"\n**Warning:** a job that sets nothing would be refused: {err}. Set the "
                    f"server's defaults with `/disco-admin defaults set`.")
        return ""

    @models.command(name="show", description="Show which diffusion and CLIP models are allowed")
    async def models_show(self, interaction: discord.Interaction) -> None:
        guild = await self.db.guilds.get(interaction.guild_id)
        await say(interaction, self._rules(guild, channel_id=rules_channel_id(interaction)))

    # ---- refund ----------------------------------------------------------------------------

    @app_commands.command(name="refund", description="Give back the GPU time a job was charged")
    @app_commands.describe(job="the job id (from its messages or /job show)",
                           reason="why (kept in the audit log)")
    async def refund(self, interaction: discord.Interaction, job: JobId,
                     reason: Optional[app_commands.Range[str, 1, 200]] = None) -> None:
        found = await job_of_this_server(self.db, interaction, job.strip(),
                                         fix="refund it from the server it ran in")
        if found.state in ACTIVE:  # a refund now would miss what it is charged later
            await say(interaction, f"**Unchanged:** job `{found.id}` is still {found.state}; its GPU "
                                   f"time is charged as it renders, so refund it once it has ended, "
                                   f"or stop it with /cancel")
            return
        seconds = await self.db.quotas.refund(found.id, reason=reason or "refunded by an admin",
                                              actor_id=interaction.user.id)
        if not seconds:
            await say(interaction, f"**Unchanged:** job `{found.id}` has no GPU time charged (never "
                                   f"charged, or already refunded)")
            return
        await say(interaction, f"**Refunded** {seconds_text(seconds)} of job `{found.id}` to "
                               f"<@{found.user_id}>.")

    # ---- audit -----------------------------------------------------------------------------

    @app_commands.command(name="audit", description="The latest admin changes, newest first")
    @app_commands.describe(limit="how many entries (default 10)",
                           before="only entries older than this number (the #N of an entry), for the next page")
    async def audit(self, interaction: discord.Interaction,
                    limit: Optional[app_commands.Range[int, 1, 25]] = None,
                    before: Optional[app_commands.Range[int, 1, 2**53]] = None) -> None:
        wanted = limit or 10
        entries = await self.db.audit.list(interaction.guild_id, limit=wanted + 1, before_id=before)
        more, entries = len(entries) > wanted, entries[:wanted]
        if not entries:
            await say(interaction, "No older entries in the audit log." if before else "The audit log is empty.")
            return
        await say(interaction, audit_page([audit_line(entry) for entry in entries],
                                          [entry.id for entry in entries], more))

    # ---- the fleet -------------------------------------------------------------------------

    @app_commands.command(name="workers",
                          description="The engines working on the queue, and queued jobs none can run")
    async def workers(self, interaction: discord.Interaction) -> None:
        workers = await self.db.workers.list()
        table = fleet_table(workers, await self.db.clock(), limit=1500)
        stranded = "".join(f"\n{line}" for line in stranded_lines(await self.db.workers.stranded()))
        await say(interaction, f"```\n{table}\n```{stranded}")


async def setup(bot: commands.Bot) -> None:
    """Extension entry point (needs bot.db, opened in setup_hook before the cogs load)."""
    await bot.add_cog(AdminCog(bot, bot.db))
