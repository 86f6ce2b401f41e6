"""What the repositories need from a backend (storage/connection.py for SQLite,
storage/postgres.py for PostgreSQL), as seen through `Database`: typing only."""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Iterable, Protocol


class Store(Protocol):
    kind: str  # 'sqlite' or 'postgresql'
    skip_locked: str  # appended to the claim's pick: '' or ' FOR UPDATE SKIP LOCKED'

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    def snapshot(self) -> AbstractAsyncContextManager[Any]: ...

    async def execute(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[Any]: ...

    async def clock(self, conn: Any = None) -> float: ...
