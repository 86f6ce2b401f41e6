"""Per-user notify preferences (storage/users.py) on both backends (the `store` fixture): the
default, a change, the refusal of an unknown choice, and paging of jobs.list by offset."""
from __future__ import annotations

import pytest

from storage import DEFAULT_NOTIFY, NOTIFY_CHOICES, SCHEMA_VERSION, InvalidValue
from storage.migrations import MIGRATIONS, OWN_TABLES
from storage.pg_schema import PG_MIGRATIONS
from tests.support.storage import async_test, open_db, request


@async_test
async def test_notify_defaults_changes_and_refuses_unknown_choices(store):
    async with await open_db(store) as db:
        assert await db.users.notify(42) == DEFAULT_NOTIFY == "channel"
        for choice in NOTIFY_CHOICES:
            assert await db.users.set_notify(42, choice) == choice
            assert await db.users.notify("42") == choice
        assert await db.users.notify(43) == DEFAULT_NOTIFY  # per user
        with pytest.raises(InvalidValue, match="notify_choice"):
            await db.users.set_notify(42, "loud")
        assert await db.users.notify(42) == "off"


@async_test
async def test_jobs_list_pages_by_offset_newest_first(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10)
        ids = [(await db.jobs.enqueue(request(user=7))).id for _ in range(7)]
        first = await db.jobs.list(guild_id=1, user_id=7, limit=5)
        second = await db.jobs.list(guild_id=1, user_id=7, limit=5, offset=5)
        assert [j.id for j in first + second] == ids[::-1]
        assert await db.jobs.list(guild_id=1, user_id=7, limit=5, offset=10) == []


def test_the_notify_step_exists_on_both_backends():
    assert "user_settings" in OWN_TABLES and len(PG_MIGRATIONS) == len(MIGRATIONS) == SCHEMA_VERSION
    assert any("user_settings" in " ".join(m.statements) for m in MIGRATIONS)
    assert any("user_settings" in " ".join(m.statements) for m in PG_MIGRATIONS)
