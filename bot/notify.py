"""Direct messages to a requester whose job finished, for those who chose `/disco-settings notify:dm`.

Called by the poster's delivery (bot/poster.py) with the result's message id once the result is
in the channel: the DM says where it is (a jump link) and carries the first message of its files,
without buttons (a DM has no server to check a click against). When the channel refused the
result (deleted, or the bot may no longer post there) it is called with None instead: the whole
result goes to the DM, which says why it is there.

Discord's rules for DMs (research/beyond.md §4): DMs follow a user's own request, and a refusal
(50007: the user blocks the bot, closed DMs from server members or left every shared server)
cannot be checked beforehand and counts toward the invalid-request limit, so each is tried once,
logged, and never retried. The DM carries a nonce fixed from the delivery's, so a bot that dies
before recording the delivery resends the same DM instead of a second one.
"""
from __future__ import annotations

import logging
from typing import Any

import discord

from storage import Job

log = logging.getLogger("disco.bot.notify")

DM_UPLOAD_LIMIT = 10 * 1024 * 1024  # a DM has no server boosts: Discord's default


def dm_intro(job: Job, result_message_id: int | None) -> str:
    if result_message_id is None:
        return (f"I could not post the result of job `{job.id}` in <#{job.channel_id}> (the channel is gone "
                f"or I may not post there), so here it is. You get it here because you chose "
                f"`/disco-settings notify:dm`.")
    link = f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{result_message_id}"
    return f"Job `{job.id}` is {job.state}: {link} (the buttons are there)."


async def notify_by_dm(poster: Any, job: Job, result_message_id: int | None) -> tuple[int | None, list[int]]:
    """DM the requester about `job` (see the module docstring); the DM channel's id and the ids of
    what was sent, (None, []) when Discord refused the DM."""
    try:
        channel = await poster.client.create_dm(discord.Object(int(job.user_id)))
        return channel.id, await poster.send_result(job, channel, nonce=f"{job.delivery_nonce}-dm", ping=False, buttons=False,
                                        intro=dm_intro(job, result_message_id),
                                        max_messages=None if result_message_id is None else 1,
                                        upload_limit=DM_UPLOAD_LIMIT)
    except discord.HTTPException as exc:
        log.warning("job %s: could not DM user %s (%s %s); not trying again", job.id, job.user_id,
                    exc.status, exc.code)
        return None, []
