"""`disco jobs`: the operator's view of the queue — submit, list, show, fetch, cancel, retry.

Discord-free and torch-free: it validates settings with engine.spec and talks to storage only.
`disco` loads the config file and resolves the data folder; this command is handed both.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

from engine.errors import EngineError
from engine.spec.options import add_batches_option, add_spec_options, bounded_int

STATE_COLUMNS = ("id", "state", "attempt", "progress", "guild_id", "user_id", "created")
DISCORD_ID = bounded_int(0, 2**64 - 1)  # a snowflake; the poster sends the result to this channel


def add_jobs_command(commands: argparse._SubParsersAction, config_options: argparse.ArgumentParser) -> None:
    """`config_options`: the entry's `--config` / `--data-dir` parent parser, on every action
    (`disco jobs list --data-dir D`)."""
    p = commands.add_parser("jobs", help="submit, list, show, fetch, cancel or retry queued jobs")
    jobs = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    submit = jobs.add_parser("submit", parents=[config_options],
                             help="queue a still image (or, with --spec, any saved job)")
    submit.add_argument("prompt", nargs="?", help='prompts joined by "|", e.g. "a lighthouse:2 | yellow:-0.5"')
    submit.add_argument("--spec", metavar="FILE", help="queue the job in FILE instead: a still's settings JSON, an "
                        "animation's (a result's _animation.json, or animation.json of disco animate) or a "
                        "study's (a result's _study.json, or study.json of disco study)")
    for name in ("--guild", "--channel", "--user"):
        submit.add_argument(name, required=True, type=DISCORD_ID,
                            help=f"Discord {name[2:]} id (any number for local use)")
    add_spec_options(submit, renders_here=False)
    add_batches_option(submit)
    submit.add_argument("--max-attempts", type=bounded_int(1, 100), default=3,
                        help="tries before the job is dead (1-100; default 3)")

    listing = jobs.add_parser("list", parents=[config_options], help="the newest jobs")
    listing.add_argument("--state", action="append", help="only these states (repeatable)")
    listing.add_argument("--guild", type=DISCORD_ID, help="only this Discord server's jobs (its id)")
    listing.add_argument("--limit", type=bounded_int(1, 10_000), default=25, help="at most this many (1-10000)")
    listing.add_argument("--json", action="store_true", help="a JSON list instead of a table")

    for action, text in (("show", "one job: state, progress, error, files"), ("cancel", "cancel a job"),
                         ("retry", "queue a failed, dead or cancelled job again")):
        sub = jobs.add_parser(action, parents=[config_options], help=text)
        sub.add_argument("job_id")
        if action == "show":
            sub.add_argument("--json", action="store_true", help="one JSON object instead of text")
    fetch = jobs.add_parser("fetch", parents=[config_options],
                            help="write a job's result files (kept in the database's blob store) into a folder")
    fetch.add_argument("job_id")
    fetch.add_argument("--out", default=".", help="the folder to write them in (default: here)")
    p.set_defaults(func=cmd_jobs)


def cmd_jobs(args: argparse.Namespace, config: dict[str, dict], data_dir: Path) -> int:
    """`config`: the config file's sections as `disco` loaded them; `data_dir`: the folder it resolved."""
    from storage import NotFound, StorageError, database_url

    try:
        return asyncio.run(_dispatch(args, config, database_url(data_dir, config["storage"].get("url"))))
    except NotFound as exc:  # storage's message names Discord's commands; here the CLI's
        missing = f"no job {args.job_id!r}" if hasattr(args, "job_id") else str(exc)
        print(f"error: {missing}; `disco jobs list` shows the ids in this database (--data-dir or "
              "--config for another)", file=sys.stderr)
        return 2
    except (EngineError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _dispatch(args: argparse.Namespace, config: dict[str, dict], database: str) -> int:
    from storage import Database

    async with await Database.open(database) as db:
        handler = {"submit": _submit, "list": _list, "show": _show, "fetch": _fetch, "cancel": _cancel,
                   "retry": _retry}[args.jobs_command]
        return await handler(db, args, config)


async def _submit(db, args, config) -> int:
    """The spec's checks (settings, moderation, the guild's models, GPU memory, size) load
    only here: listing and the other actions need none of them."""
    from commands.gpu_memory import check_gpu_memory
    from commands.job_size import job_size
    from commands.moderation import check_spec
    from commands.server_rules import check_allowed_models
    from engine.spec.render import SCHEMA_VERSION
    from engine.spec.sources import build_spec
    from storage import JobKind, JobRequest

    if args.spec:
        if args.prompt:
            raise EngineError("give a prompt or --spec FILE, not both: the file holds the prompts")
        spec, kind = read_job_file(args.spec)
    else:
        spec, report = build_spec(args)
        for line in report:
            print(f"note: {line}", file=sys.stderr)
        kind = JobKind.STILL
    spec, seed = _settle_seed(spec)
    guild = await db.guilds.get(args.guild)
    check_spec(spec, guild.banned_words)
    check_allowed_models(spec, guild.allowed_models, guild.allowed_clip_models)
    check_gpu_memory(spec, float(config["engine"].get("gpu_memory_gb", 0.0)))
    model_set = args.models or config["engine"]["model_set"]
    job = await db.jobs.enqueue(JobRequest(
        guild_id=args.guild, channel_id=args.channel, user_id=args.user, kind=kind,
        spec_json=spec.to_json(), spec_version=SCHEMA_VERSION, model_set=model_set, seed=seed,
        max_attempts=args.max_attempts, **job_size(spec).request_fields()))
    print(job.id)
    return 0


def read_job_file(path: str):
    """(spec, kind) of a saved job: a still's settings, an animation's or a study's."""
    from engine.media.files import read_user_file
    from engine.spec.animation import AnimationSpec, unwrap_run_file
    from engine.spec.jsontext import read_json
    from engine.spec.render import RenderSpec
    from engine.spec.study import StudySpec
    from storage import JobKind

    raw = read_user_file(path, what="--spec")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EngineError(f"--spec: cannot read {path} as JSON ({exc}); give a settings file this "
                          f"project wrote") from None
    data = read_json(text, f"--spec: {path}")
    if isinstance(data, dict):  # disco animate's animation.json: the animation it wraps
        data = unwrap_run_file(data)
    if isinstance(data, dict) and "render" in data:
        return _video_frames(AnimationSpec.from_dict(data)), JobKind.ANIMATION
    if isinstance(data, dict) and "base" in data and "x" in data:
        return StudySpec.from_json(json.dumps(data)), JobKind.STUDY
    return RenderSpec.from_dict(data), JobKind.STILL


def _video_frames(anim):
    """A video-input animation renders as many frames as its video gives, at most max_frames."""
    if anim.animation_mode != "Video Input":
        return anim
    from engine.media.video import check_selection, probe_video

    frames = check_selection(probe_video(anim.video_init_path, decode=True), anim.extract_nth_frame,
                             anim.max_frames)
    return anim.replace(max_frames=frames)


def _settle_seed(spec):
    """Fix a missing seed now: every attempt and every rerun must draw the same noise."""
    from engine.spec.animation import AnimationSpec
    from engine.spec.study import StudySpec

    if isinstance(spec, StudySpec):
        return spec, spec.base.seed  # a study's seed is always fixed
    render = spec.render if isinstance(spec, AnimationSpec) else spec
    if render.seed is not None:
        return spec, render.seed
    seed = random.randint(0, 2**32 - 1)
    if isinstance(spec, AnimationSpec):
        return spec.replace(render={**render.to_dict(), "seed": seed}), seed
    return spec.replace(seed=seed), seed


def _row(job) -> dict:
    return {"id": job.id, "state": job.state + (" (damaged row)" if job.damaged else ""), "attempt": f"{job.attempt}/{job.max_attempts}",
            "progress": f"{job.progress_step}/{job.progress_total}", "guild_id": job.guild_id,
            "user_id": job.user_id, "created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(job.created_at))}


async def _list(db, args, config) -> int:
    jobs = await db.jobs.list(guild_id=args.guild, states=args.state, limit=args.limit)
    if args.json:
        print(json.dumps([_details(j) for j in jobs], indent=2))
        return 0
    rows = [_row(j) for j in jobs]
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in STATE_COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in STATE_COLUMNS))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in STATE_COLUMNS))
    return 0


def _details(job) -> dict:
    return {"id": job.id, "kind": job.kind, "state": job.state, "cancel_requested": job.cancel_requested,
            "attempt": job.attempt, "max_attempts": job.max_attempts,
            "progress": {"step": job.progress_step, "total": job.progress_total, "frame": job.progress_frame,
                         "frames": job.frames, "seconds_per_step": job.seconds_per_step},
            "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
            "artifacts": list(job.artifacts), "notes": list(job.notes), "preview": job.preview_path,
            "checkpoint": job.checkpoint_path, "gpu_seconds": job.gpu_seconds,
            "guild_id": job.guild_id, "channel_id": job.channel_id, "user_id": job.user_id,
            "seed": job.seed, "model_set": job.model_set, "created_at": job.created_at,
            "started_at": job.started_at, "finished_at": job.finished_at,
            "damaged": list(job.damaged)}


async def _show(db, args, config) -> int:
    details = _details(await db.jobs.get(args.job_id))
    if args.json:
        print(json.dumps(details, indent=2))
        return 0
    for key, value in details.items():
        if isinstance(value, list):
            value = "\n    ".join([""] + value) if value else "none"
        print(f"{key}: {value}")
    return 0


async def _fetch(db, args, config) -> int:
    """The job's results under their own names in `--out` (an existing file is not overwritten)."""
    from storage import NotFound, name_of

    job = await db.jobs.get(args.job_id)
    if not job.artifacts:
        raise EngineError(f"job {job.id} has no result files ({job.state}); see disco jobs show {job.id}")
    out = Path(args.out)
    if not out.is_dir():
        raise EngineError(f"--out {out}: not a folder; create it first or name another")
    missing = 0
    for ref in job.artifacts:
        target = out / name_of(ref)
        if target.exists():
            raise EngineError(f"{target} exists already; remove it or give another --out")
        try:
            await db.blobs.save_to(ref, target)
        except NotFound:
            missing += 1
            print(f"{name_of(ref)}: no longer kept (removed after the retention period)", file=sys.stderr)
            continue
        print(target)
    return 1 if missing else 0


async def _cancel(db, args, config) -> int:
    from storage import JobState

    job = await db.jobs.cancel(args.job_id)
    print(f"{job.id}: {job.state}" + (" (cancel requested; stops within a step)"
                                       if job.state == JobState.RUNNING else ""))
    return 0


async def _retry(db, args, config) -> int:
    job = await db.jobs.retry(args.job_id)
    print(f"{job.id}: {job.state} (attempt {job.attempt + 1} of {job.max_attempts} next)")
    return 0
