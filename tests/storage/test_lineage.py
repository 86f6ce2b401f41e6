"""A child job records how it came from its parent (the named `_V_LINEAGE` step), on both
backends (the `store` fixture), and nonsense lineage is refused."""
from __future__ import annotations

import pytest

from storage import InvalidValue
from tests.support.storage import async_test, open_db, request


@async_test
async def test_a_child_keeps_its_parent_action_and_image(store):
    async with await open_db(store) as db:
        parent = await db.jobs.enqueue(request())
        child = await db.jobs.enqueue(request(parent_job_id=parent.id, parent_action="vary", parent_image=1))
        again = await db.jobs.get(child.id)
        assert (again.parent_job_id, again.parent_action, again.parent_image) == (parent.id, "vary", 1)
        assert (parent.parent_action, parent.parent_image) == (None, None)


@pytest.mark.parametrize("fields", [
    {"parent_action": "vary"},                                   # no parent
    {"parent_job_id": "X", "parent_action": "Vary!"},
    {"parent_job_id": "X", "parent_action": "a" * 25},
    {"parent_job_id": "X", "parent_image": -1},
    {"parent_job_id": "X", "parent_image": 10_000},
    {"parent_job_id": "X", "parent_image": True},
])
def test_lineage_is_bounded(fields):
    with pytest.raises(InvalidValue):
        request(**fields).validate()
