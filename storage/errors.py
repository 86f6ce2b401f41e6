"""Storage exceptions: one root (`StorageError`), so the bot and the engine catch one type.

Every message a user or an operator can see names the rule that was broken and the fix.
Database-file problems (`DatabaseError` and its subclasses) never come with a silent reset:
storage refuses to touch a file it does not understand.
"""
from __future__ import annotations

from datetime import datetime, timezone


class StorageError(Exception):
    """Root of every error storage raises on purpose."""


# ---- the database file -----------------------------------------------------------------------

class DatabaseError(StorageError):
    """The database cannot be used: damaged, foreign, too new, locked, unreachable, or the disk is full."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class DatabaseCorrupt(DatabaseError):
    """The file is not a SQLite database, or SQLite reports it damaged."""


class ForeignDatabase(DatabaseError):
    """A valid SQLite file that belongs to some other program."""


class SchemaTooNew(DatabaseError):
    """The file was written by a newer version of this program (higher PRAGMA user_version)."""

    def __init__(self, message: str, path: str, found: int, known: int):
        super().__init__(message, path)
        self.found = found
        self.known = known


class DatabaseLocked(DatabaseError):
    """Another connection held the write lock for longer than the busy timeout."""


class DatabaseUnavailable(DatabaseError):
    """The database server cannot be reached, or the connection dropped (PostgreSQL): nothing
    was changed by the failed call, and retrying later is safe."""


class DiskFull(DatabaseError):
    """The disk is full: SQLite could not grow the file (SQLITE_FULL; the transaction was rolled
    back), PostgreSQL's server is out of space, or a blob file could not be written."""


# ---- rows and states ------------------------------------------------------------------------

class NotFound(StorageError, LookupError):
    """No row with that key (a job id, a preset name)."""


class InvalidValue(StorageError, ValueError):
    """An argument is out of range or malformed; the message says what is allowed."""


class InvalidState(StorageError):
    """The row is in a state where this change is not allowed (e.g. retrying a queued job)."""


class StaleAttempt(StorageError):
    """A write fenced by (job id, attempt, owner) no longer matches the row: rejected, unchanged.

    It means the lease expired and the job was requeued (or re-claimed), cancelled, or finished;
    the caller must stop working on this attempt.
    """

    def __init__(self, job_id: str, attempt: int, owner: str, current_state: str | None,
                 current_attempt: int | None):
        where = ("the job no longer exists" if current_state is None else
                 f"the job is now {current_state} at attempt {current_attempt}")
        super().__init__(f"job {job_id}: write from attempt {attempt} (owner {owner}) rejected: "
                         f"{where}; stop working on this attempt")
        self.job_id = job_id
        self.attempt = attempt
        self.owner = owner
        self.current_state = current_state
        self.current_attempt = current_attempt


# ---- refusals at enqueue --------------------------------------------------------------------

class IntakePaused(StorageError):
    """The guild's admins paused new jobs."""


class ChannelNotAllowed(StorageError):
    """The guild allows renders only in some channels, and this is not one of them."""


class DuplicateJob(StorageError):
    """The user already has a job made the same way from the same job (a button clicked twice)
    with exactly these settings and a fixed seed waiting or running: a second would paint the
    same picture."""

    def __init__(self, job_id: str):
        super().__init__(f"your job `{job_id}` with exactly these settings and this seed is already "
                         f"queued or running, and would paint the same picture (rule: duplicate_job); "
                         f"wait for it, or change the seed or a setting")
        self.job_id = job_id


class CapExceeded(StorageError):
    """A guild limit refuses the job. `cap` is the limit's name, `limit` its value, `fix` the way out."""

    def __init__(self, cap: str, limit: int, value: int, message: str, fix: str):
        super().__init__(f"{message} (limit {cap}={limit}); {fix}")
        self.cap = cap
        self.limit = limit
        self.value = value
        self.fix = fix


class QueueFull(CapExceeded):
    """A queue-length cap: waiting jobs per user or per guild."""


class JobTooLarge(CapExceeded):
    """A size cap: steps, pixels, cuts or frames."""


class QuotaExceeded(StorageError):
    """A GPU-seconds budget for the day or the month is used up.

    `scope` is 'user' (the member's own budget) or 'guild' (the server's total), `window` is
    'day' or 'month', `resets_at` the UTC epoch second when the window rolls over.
    """

    def __init__(self, scope: str, window: str, limit_seconds: float, used_seconds: float,
                 resets_at: float):
        period = "today" if window == "day" else "this month"
        whose = "your" if scope == "user" else "this server's"
        when = datetime.fromtimestamp(resets_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        spent = (f"is used up: {_seconds(used_seconds)} of {_seconds(limit_seconds)} GPU-seconds"
                 if limit_seconds > 0 else "is 0 GPU-seconds: no renders")
        super().__init__(
            f"{whose} GPU budget for {period} {spent} ({window} limit); it resets at {when}. "
            f"Wait until then, or ask a server admin to raise the {window} limit")
        self.scope = scope
        self.window = window
        self.limit_seconds = limit_seconds
        self.used_seconds = used_seconds
        self.resets_at = resets_at


def _seconds(seconds: float) -> str:
    """GPU-seconds as people read them: whole, with a decimal under 10 (0.4, not 0)."""
    return f"{seconds:,.1f}" if 0 < seconds < 10 else f"{seconds:,.0f}"
