"""The schema, as an ordered list of migration steps.

Step N brings a database from PRAGMA user_version N-1 to N; `db.migrate` runs each step in its
own BEGIN IMMEDIATE transaction together with the user_version bump, so a crash leaves the file
at a whole step. Never edit a released step: append a new one.

Conventions: Discord ids are TEXT (snowflakes, compared as strings); times are UTC epoch
seconds (REAL); JSON columns are TEXT. `jobs.seq` is the arrival order (FIFO) and `jobs.id` the
public, sortable job id. `queue_guilds` / `queue_users` are kept by triggers: per guild and per
(guild, user) how many jobs wait and run, plus the round-robin `turn` (0 = never served, else
a counter that grows on every claim) and `waiting_since` (seq of the job that started the
current wait), which make the fair claim a few index look-ups whatever the queue length.
"""
from __future__ import annotations

from typing import NamedTuple

APPLICATION_ID = 0x44495343  # "DISC": marks the file as ours in its header (PRAGMA application_id)


class Migration(NamedTuple):
    description: str
    statements: tuple[str, ...]


_V1 = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    """CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        guild_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('still','animation','study')),
        spec_json TEXT NOT NULL,
        spec_version INTEGER NOT NULL,
        seed INTEGER,
        priority INTEGER NOT NULL DEFAULT 0,
        model_set TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        steps INTEGER NOT NULL,
        frames INTEGER NOT NULL DEFAULT 1,
        cuts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'queued'
            CHECK (state IN ('queued','running','succeeded','failed','cancelled','dead')),
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        lease_owner TEXT,
        lease_expires_at REAL,
        heartbeat_at REAL,
        lease_expiries INTEGER NOT NULL DEFAULT 0,
        progress_step INTEGER NOT NULL DEFAULT 0,
        progress_total INTEGER NOT NULL DEFAULT 0,
        progress_frame INTEGER NOT NULL DEFAULT 0,
        progress_frames INTEGER NOT NULL DEFAULT 0,
        seconds_per_step REAL,
        preview_path TEXT,
        checkpoint_path TEXT,
        artifacts_json TEXT NOT NULL DEFAULT '[]',
        gpu_seconds REAL NOT NULL DEFAULT 0,
        error_code TEXT,
        error_message TEXT,
        delivery_state TEXT NOT NULL DEFAULT 'pending'
            CHECK (delivery_state IN ('pending','sending','posted','abandoned')),
        delivery_nonce TEXT,
        delivery_updated_at REAL,
        progress_message_id TEXT,
        result_message_ids TEXT NOT NULL DEFAULT '[]',
        parent_job_id TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        updated_at REAL NOT NULL
    )""",
    # The claim's last step: one user's next job (priority first, then FIFO).
    "CREATE INDEX jobs_queued ON jobs (guild_id, user_id, priority DESC, seq) "
    "WHERE state = 'queued'",
    "CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running'",
    "CREATE INDEX jobs_by_user ON jobs (guild_id, user_id, seq)",
    "CREATE INDEX jobs_by_guild ON jobs (guild_id, seq)",
    "CREATE INDEX jobs_undelivered ON jobs (finished_at) "
    "WHERE delivery_state IN ('pending','sending') AND finished_at IS NOT NULL",
    """CREATE TABLE queue_guilds (
        guild_id TEXT PRIMARY KEY,
        queued INTEGER NOT NULL DEFAULT 0,
        running INTEGER NOT NULL DEFAULT 0,
        turn INTEGER NOT NULL DEFAULT 0,
        waiting_since INTEGER NOT NULL DEFAULT 0,
        served_at REAL
    )""",
    "CREATE INDEX queue_guilds_turn ON queue_guilds (turn)",
    "CREATE INDEX queue_guilds_waiting ON queue_guilds (turn, waiting_since) WHERE queued > 0",
    """CREATE TABLE queue_users (
        guild_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        queued INTEGER NOT NULL DEFAULT 0,
        running INTEGER NOT NULL DEFAULT 0,
        turn INTEGER NOT NULL DEFAULT 0,
        waiting_since INTEGER NOT NULL DEFAULT 0,
        served_at REAL,
        PRIMARY KEY (guild_id, user_id)
    )""",
    "CREATE INDEX queue_users_turn ON queue_users (guild_id, turn)",
    "CREATE INDEX queue_users_waiting ON queue_users (guild_id, turn, waiting_since) "
    "WHERE queued > 0",
    # Counters follow every state change, so they cannot drift from the jobs table
    # (SET expressions read the old row: waiting_since restarts when the count leaves 0).
    """CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO queue_guilds (guild_id, queued, running, waiting_since)
        VALUES (NEW.guild_id, NEW.state = 'queued', NEW.state = 'running', NEW.seq)
        ON CONFLICT (guild_id) DO UPDATE SET
            waiting_since = CASE WHEN queued = 0 AND NEW.state = 'queued'
                                 THEN NEW.seq ELSE waiting_since END,
            queued = queued + (NEW.state = 'queued'),
            running = running + (NEW.state = 'running');
        INSERT INTO queue_users (guild_id, user_id, queued, running, waiting_since)
        VALUES (NEW.guild_id, NEW.user_id, NEW.state = 'queued', NEW.state = 'running', NEW.seq)
        ON CONFLICT (guild_id, user_id) DO UPDATE SET
            waiting_since = CASE WHEN queued = 0 AND NEW.state = 'queued'
                                 THEN NEW.seq ELSE waiting_since END,
            queued = queued + (NEW.state = 'queued'),
            running = running + (NEW.state = 'running');
    END""",
    """CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs
    WHEN OLD.state != NEW.state BEGIN
        UPDATE queue_guilds SET
            waiting_since = CASE WHEN queued = 0 AND NEW.state = 'queued'
                                 THEN NEW.seq ELSE waiting_since END,
            queued = queued - (OLD.state = 'queued') + (NEW.state = 'queued'),
            running = running - (OLD.state = 'running') + (NEW.state = 'running')
        WHERE guild_id = NEW.guild_id;
        UPDATE queue_users SET
            waiting_since = CASE WHEN queued = 0 AND NEW.state = 'queued'
                                 THEN NEW.seq ELSE waiting_since END,
            queued = queued - (OLD.state = 'queued') + (NEW.state = 'queued'),
            running = running - (OLD.state = 'running') + (NEW.state = 'running')
        WHERE guild_id = NEW.guild_id AND user_id = NEW.user_id;
    END""",
    """CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
        UPDATE queue_guilds SET
            queued = queued - (OLD.state = 'queued'),
            running = running - (OLD.state = 'running')
        WHERE guild_id = OLD.guild_id;
        UPDATE queue_users SET
            queued = queued - (OLD.state = 'queued'),
            running = running - (OLD.state = 'running')
        WHERE guild_id = OLD.guild_id AND user_id = OLD.user_id;
    END""",
    """CREATE TABLE step_timings (
        id INTEGER PRIMARY KEY,
        model_set TEXT NOT NULL,
        size_bucket INTEGER NOT NULL,
        seconds_per_step REAL NOT NULL,
        recorded_at REAL NOT NULL
    )""",
    "CREATE INDEX step_timings_key ON step_timings (model_set, size_bucket, id)",
    """CREATE TABLE guild_settings (
        guild_id TEXT PRIMARY KEY,
        intake_paused INTEGER NOT NULL DEFAULT 0,
        pause_reason TEXT,
        max_steps INTEGER,
        max_pixels INTEGER,
        max_cuts INTEGER,
        max_frames INTEGER,
        max_queued_per_user INTEGER,
        max_running_per_user INTEGER,
        max_queued_per_guild INTEGER,
        defaults_json TEXT NOT NULL DEFAULT '{}',
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE guild_channels (
        guild_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        PRIMARY KEY (guild_id, channel_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE banned_words (
        guild_id TEXT NOT NULL,
        word TEXT NOT NULL,
        PRIMARY KEY (guild_id, word)
    ) WITHOUT ROWID""",
    """CREATE TABLE quota_limits (
        guild_id TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('user','role','member','guild')),
        subject_id TEXT NOT NULL,
        window TEXT NOT NULL CHECK (window IN ('day','month')),
        seconds REAL NOT NULL CHECK (seconds >= 0),
        PRIMARY KEY (guild_id, scope, subject_id, window)
    ) WITHOUT ROWID""",
    """CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        guild_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('charge','refund')),
        gpu_seconds REAL NOT NULL,
        day TEXT NOT NULL,
        month TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        note TEXT
    )""",
    "CREATE INDEX usage_user_day ON usage (guild_id, user_id, day)",
    "CREATE INDEX usage_user_month ON usage (guild_id, user_id, month)",
    "CREATE INDEX usage_guild_day ON usage (guild_id, day)",
    "CREATE INDEX usage_guild_month ON usage (guild_id, month)",
    "CREATE INDEX usage_job ON usage (job_id)",
    """CREATE TABLE presets (
        guild_id TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        name TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        spec_version INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (guild_id, owner_id, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        guild_id TEXT NOT NULL,
        actor_id TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail_json TEXT NOT NULL DEFAULT '{}',
        at REAL NOT NULL
    )""",
    "CREATE INDEX audit_by_guild ON audit_log (guild_id, id)",
)

# The requester's roles at enqueue time: role quotas are checked again while a job bills its
# finished cells or frames, and the engine cannot ask Discord for them.
_V2 = ("ALTER TABLE jobs ADD COLUMN role_ids_json TEXT NOT NULL DEFAULT '[]'",)

# Server rules admins set: the most images per job (a limit: NULL = the default), the diffusion
# and CLIP models a server allows (JSON lists; NULL = every model) and render defaults per
# channel over the server's (`defaults_json`).
_V_SERVER_RULES = (
    "ALTER TABLE guild_settings ADD COLUMN max_images INTEGER",
    "ALTER TABLE guild_settings ADD COLUMN allowed_models_json TEXT",
    "ALTER TABLE guild_settings ADD COLUMN allowed_clip_models_json TEXT",
    """CREATE TABLE channel_defaults (
        guild_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        defaults_json TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (guild_id, channel_id)
    )""",
)

# Per-user preferences (storage/users.py): how a member hears that a job finished.
_V_USER_SETTINGS = (
    """CREATE TABLE user_settings (
        user_id TEXT PRIMARY KEY,
        notify TEXT NOT NULL DEFAULT 'channel' CHECK (notify IN ('channel','dm','off')),
        updated_at REAL NOT NULL
    )""",
)

# How a child job came from its parent (`parent_job_id`): the action (remix, vary, …) and, for
# an action on one image of the parent's result, that image's index; shown by `/job show`.
_V_LINEAGE = (
    "ALTER TABLE jobs ADD COLUMN parent_action TEXT",
    "ALTER TABLE jobs ADD COLUMN parent_image INTEGER",
)

# Job files as content-addressed blobs (storage/blobs.py): on SQLite the bytes are files next to
# the database (`blobs/ab/<sha256>`); `job_files` names each job's files and counts references.
_V_BLOBS = (
    """CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        touched_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE job_files (
        job_id TEXT NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL
            CHECK (role IN ('input','preview','checkpoint','output','frame','cell','state')),
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (job_id, name)
    ) WITHOUT ROWID""",
    "CREATE INDEX job_files_blob ON job_files (sha256)",
)

# Workers on any host (`disco worker`, `disco engine`): what each can run, so a claim takes only
# jobs that fit (`jobs.memory_gb`: the GPU memory the job needs in DD's least hungry loop, 0 =
# unknown; `jobs.models`: the models it loads, the key of the claim's affinity), and the fleet
# as `disco workers` shows it (a worker whose heartbeat is older than its lease is not live).
_V_WORKERS = (
    "ALTER TABLE jobs ADD COLUMN memory_gb REAL NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN models TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        device TEXT NOT NULL,
        model_sets_json TEXT NOT NULL DEFAULT '[]',
        memory_gb REAL NOT NULL DEFAULT 0,
        max_pixels INTEGER NOT NULL DEFAULT 0,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        current_job_id TEXT,
        jobs_done INTEGER NOT NULL DEFAULT 0,
        seconds_per_step REAL
    )""",
    "CREATE INDEX workers_heartbeat ON workers (heartbeat_at)",
)

# Where a result was posted when it is not the job's own channel: the requester's DM channel,
# when the channel refused it and they chose DMs (NULL: the job's channel).
_V_RESULT_CHANNEL = (
    "ALTER TABLE jobs ADD COLUMN result_channel_id TEXT",
)

# What the engine noted about a finished job that the user should know (it rendered in a
# cheaper way after running out of memory, CLIP did not read a prompt's end): a JSON list of texts.
_V_RESULT_NOTES = (
    "ALTER TABLE jobs ADD COLUMN result_notes TEXT NOT NULL DEFAULT '[]'",
)

# A member's own render defaults (`/disco-settings defaults:`, storage/users.py): a JSON object of
# setting → value, opaque here (the commands layer checks it when set and again when read).
_V_USER_DEFAULTS = (
    "ALTER TABLE user_settings ADD COLUMN defaults_json TEXT NOT NULL DEFAULT '{}'",
)

# Usage statistics (storage/stats.py) read the jobs created and the GPU time charged in the
# last days: both by time, without reading the whole table.
_V_STATS = (
    "CREATE INDEX jobs_by_created ON jobs (created_at)",
    "CREATE INDEX usage_by_recorded ON usage (recorded_at)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration("jobs queue, fairness counters, guild settings, quotas, presets, audit log", _V1),
    Migration("jobs remember the requester's roles", _V2),
    Migration("server rules: most images per job, allowed models, channel defaults", _V_SERVER_RULES),
    Migration("per-user notification preference", _V_USER_SETTINGS),
    Migration("jobs say how they came from their parent", _V_LINEAGE),
    Migration("job files as content-addressed blobs", _V_BLOBS),
    Migration("workers: what each can run and its heartbeat; jobs' memory need and models", _V_WORKERS),
    Migration("jobs say where their result went when not to their channel", _V_RESULT_CHANNEL),
    Migration("jobs keep the engine's notes on their result", _V_RESULT_NOTES),
    Migration("a member's own render defaults", _V_USER_DEFAULTS),
    Migration("indexes by time for usage statistics", _V_STATS),
)

SCHEMA_VERSION = len(MIGRATIONS)

# Tables a database of ours has; used to tell our own half-made file from someone else's.
OWN_TABLES = frozenset({
    "jobs", "queue_guilds", "queue_users", "step_timings", "guild_settings", "guild_channels",
    "banned_words", "quota_limits", "usage", "presets", "audit_log", "channel_defaults",
    "user_settings", "blobs", "job_files", "workers",
})
