"""Per-user preferences (storage/users.py) on both backends (the `store` fixture): notify (the
default, a change, the refusal of an unknown choice), a member's own defaults (stored, replaced,
removed, bounded, a damaged value read as none), and paging of jobs.list by offset."""
from __future__ import annotations

import pytest

from storage import (
    DEFAULT_NOTIFY,
    MAX_USER_DEFAULTS,
    MAX_USER_DEFAULTS_JSON,
    NOTIFY_CHOICES,
    SCHEMA_VERSION,
    InvalidValue,
)
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
async def test_own_defaults_are_stored_per_user_beside_notify(store):
    async with await open_db(store) as db:
        assert await db.users.defaults(42) == {}
        assert await db.users.set_defaults(42, {"steps": 150, "eta": 0.5}) == {"steps": 150, "eta": 0.5}
        assert await db.users.defaults("42") == {"steps": 150, "eta": 0.5}
        assert await db.users.notify(42) == DEFAULT_NOTIFY  # a row made for defaults keeps notify's default
        await db.users.set_notify(42, "dm")
        await db.users.set_defaults(42, {"steps": 100})  # the whole set is replaced; notify stays
        assert (await db.users.defaults(42), await db.users.notify(42)) == ({"steps": 100}, "dm")
        await db.users.set_notify(43, "off")  # a row made for notify has no defaults
        assert await db.users.defaults(43) == {}
        await db.users.set_defaults(42, {})
        assert await db.users.defaults(42) == {} and await db.users.notify(42) == "dm"


@async_test
async def test_own_defaults_are_bounded_and_a_damaged_value_reads_as_none(store):
    async with await open_db(store) as db:
        await db.users.set_defaults(42, {"steps": 150})
        most = {f"key_{n}": n for n in range(MAX_USER_DEFAULTS)}
        assert await db.users.set_defaults(7, most) == most
        with pytest.raises(InvalidValue, match="user_defaults_count"):
            await db.users.set_defaults(42, {**most, "one_more": 1})
        with pytest.raises(InvalidValue, match="user_defaults_size"):
            await db.users.set_defaults(42, {"text_prompts": "x" * MAX_USER_DEFAULTS_JSON})
        for wrong in (["steps", 150], {1: 2}):
            with pytest.raises(InvalidValue, match="JSON object"):
                await db.users.set_defaults(42, wrong)
        assert await db.users.defaults(42) == {"steps": 150}  # nothing refused was written
        await db.execute("UPDATE user_settings SET defaults_json = ? WHERE user_id = ?", ("[1, 2", "42"))
        assert await db.users.defaults(42) == {}


@async_test
async def test_jobs_list_pages_by_offset_newest_first(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10)
        ids = [(await db.jobs.enqueue(request(user=7))).id for _ in range(7)]
        first = await db.jobs.list(guild_id=1, user_id=7, limit=5)
        second = await db.jobs.list(guild_id=1, user_id=7, limit=5, offset=5)
        assert [j.id for j in first + second] == ids[::-1]
        assert await db.jobs.list(guild_id=1, user_id=7, limit=5, offset=10) == []


def test_the_notify_and_defaults_steps_exist_on_both_backends():
    assert "user_settings" in OWN_TABLES and len(PG_MIGRATIONS) == len(MIGRATIONS) == SCHEMA_VERSION
    for migrations in (MIGRATIONS, PG_MIGRATIONS):
        assert any("CREATE TABLE user_settings" in " ".join(m.statements) for m in migrations)
        assert any("user_settings ADD COLUMN defaults_json" in " ".join(m.statements) for m in migrations)
