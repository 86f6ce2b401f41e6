"""Durable storage on SQLite (aiosqlite, the default) or PostgreSQL (psycopg 3): the job queue
with leases and fencing, guild settings, quotas and the usage ledger, presets, the audit log.

    db = await Database.open(database_url("data"))         # sqlite:///data/disco.db, or
                                                           # DISCO_DATABASE_URL=postgresql://…
    job = await db.jobs.enqueue(JobRequest(...))           # the bot
    job = await db.leases.claim("engine:host:1234")        # the engine
    cancel = await db.leases.heartbeat(job.id, job.attempt, "engine:host:1234")
    ref = await db.blobs.put(png_bytes, "preview.png", job_id=job.id, role="preview")  # job files

Imports nothing else of this project (no engine, bot, discord or torch).
"""
from .audit import AuditEntry, AuditLog
from .blobs import (
    DEFAULT_MAX_BYTES,
    DEFAULT_RETENTION_DAYS,
    BlobTooLarge,
    JobFile,
    Swept,
    blob_ref,
    name_of,
    parse_ref,
)
from .db import DATABASE_FILE, URL_VARIABLE, Database, database_path, database_url
from .errors import (
    CapExceeded,
    ChannelNotAllowed,
    DatabaseCorrupt,
    DatabaseError,
    DatabaseLocked,
    DatabaseUnavailable,
    DiskFull,
    ForeignDatabase,
    DuplicateJob,
    IntakePaused,
    InvalidState,
    InvalidValue,
    JobTooLarge,
    NotFound,
    QueueFull,
    QuotaExceeded,
    SchemaTooNew,
    StaleAttempt,
    StorageError,
)
from .eta import QueueEstimate
from .guilds import DEFAULT_LIMITS, GuildLimits, GuildSettings
from .job_types import ACTIVE, TERMINAL, JobKind, JobState
from .jobs import MAX_NOTE_CHARS, MAX_RESULT_NOTES, Job, JobRequest, new_job_id
from .leases import LEASE_SECONDS
from .migrations import SCHEMA_VERSION
from .presets import Preset
from .quotas import LedgerEntry, QuotaLimit, WindowUsage
from .users import DEFAULT_NOTIFY, MAX_USER_DEFAULTS, MAX_USER_DEFAULTS_JSON, NOTIFY_CHOICES
from .workers import MAX_HELD, STALE_SECONDS, WorkerFit, WorkerInfo

__all__ = [
    "ACTIVE", "BlobTooLarge", "DEFAULT_MAX_BYTES", "DEFAULT_RETENTION_DAYS", "JobFile", "Swept", "blob_ref",
    "name_of", "parse_ref", "AuditEntry", "AuditLog", "CapExceeded", "ChannelNotAllowed", "DATABASE_FILE", "DEFAULT_LIMITS",
    "DEFAULT_NOTIFY", "MAX_USER_DEFAULTS", "MAX_USER_DEFAULTS_JSON", "NOTIFY_CHOICES",
    "Database", "DatabaseCorrupt", "DatabaseError", "DatabaseLocked", "DatabaseUnavailable", "DiskFull", "ForeignDatabase",
    "GuildLimits", "GuildSettings", "DuplicateJob", "IntakePaused", "InvalidState", "InvalidValue", "Job",
    "JobKind", "JobRequest", "JobState", "JobTooLarge", "LEASE_SECONDS", "LedgerEntry", "MAX_HELD", "MAX_NOTE_CHARS",
    "MAX_RESULT_NOTES", "NotFound", "Preset",
    "QueueEstimate", "QueueFull", "QuotaExceeded", "QuotaLimit", "SCHEMA_VERSION",
    "STALE_SECONDS", "SchemaTooNew", "StaleAttempt", "StorageError", "TERMINAL", "URL_VARIABLE", "WindowUsage",
    "WorkerFit", "WorkerInfo", "database_path", "database_url", "new_job_id",
]
