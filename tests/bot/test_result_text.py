"""The result message names what was made: a render, an animation or a study."""
from __future__ import annotations

import asyncio

from bot.poster import Poster
from storage import Database, JobRequest


def test_the_result_text_names_what_was_rendered(tmp_path):
    async def queued():
        db = await Database.open(tmp_path / "disco.db")
        try:
            return await db.jobs.enqueue(JobRequest(
                guild_id=1, channel_id=2, user_id=3, kind="still", spec_json='{"text_prompts": ["a pier"]}',
                spec_version=1, model_set="test-tiny", width=64, height=64, steps=8, seed=7))
        finally:
            await db.close()
    job = asyncio.run(queued())
    for rendered in ("render", "animation", "study"):
        text = Poster._result_text(job, ["a note"], rendered)
        assert text == f"<@3> your {rendered} is done · job `{job.id}` · seed `7`\n`a pier`\n• a note"
