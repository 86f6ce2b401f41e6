"""How a job reads in the channel, shared by the progress messages (bot/poster.py), `/queue` and
`/job show` (bot/cogs/jobs.py): its prompts, where it is ("frame 3/48 · step 12/100", "GoBig tile 2 of 9 · step 3/4"), and when
it should be done.

Every kind keeps its prompts in its own place: a still's `text_prompts`, a study's base spec's,
an animation's prompts by frame (``0: a castle || 60: a city``).
"""
from __future__ import annotations

import json
from typing import Any

from engine.spec.schedules import format_number
from storage import Job, JobKind


def kind_words(kind: str) -> str:
    """"a still job", "an animation job", "a study job": a job's kind in a sentence."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind} job"


def prompt_text(job: Job) -> str:
    """The job's prompts with their weights, '' when its spec cannot be read."""
    try:
        data = json.loads(job.spec_json)
        if job.kind == JobKind.STUDY:
            data = data.get("base") or {}
        prompts = data.get("text_prompts") or []
        if isinstance(prompts, dict):
            return " || ".join(f"{frame}: " + " | ".join(map(_one, ps)) for frame, ps in prompts.items())
        return " | ".join(map(_one, prompts))
    except (ValueError, AttributeError, TypeError):
        return ""


def _one(prompt: Any) -> str:
    if isinstance(prompt, dict):
        return f"{prompt.get('text', '')}:{format_number(float(prompt.get('weight', 1)))}"
    return str(prompt)


def showable(job: Job) -> bool:
    """What /history's 📤 Show can post again: a result, or what a stopped animation or study
    finished (its frames, its partial grid)."""
    return job.state == "succeeded" or (
        job.terminal and bool(job.artifacts) and job.kind in (JobKind.ANIMATION, JobKind.STUDY))


def undelivered_words(job: Job) -> str:
    """Where a finished job's result or notice stands when it is not (yet) in a message."""
    if job.delivery_state != "abandoned":
        return "being posted"
    words = "not posted: its channel refused it or was deleted"
    if showable(job):
        words += "; /history → 📤 Show posts it in the channel you use it in"
    return words


def progress_words(job: Job) -> str:
    """'step 12/100', with the image, cell or frame in front when the job has several."""
    total = job.progress_total or job.steps
    words = f"step {job.progress_step}/{total}"
    frames = job.progress_frames or job.frames
    if job.kind == JobKind.STUDY:
        return f"cell {job.progress_frame + 1} of {frames} · " + words
    if job.kind == JobKind.ANIMATION:
        return f"frame {job.progress_frame + 1}/{frames} · " + words
    if job.progress_frames and _gobig(job):  # the tiles of its enlargement
        return f"GoBig tile {job.progress_frame + 1} of {job.progress_frames} · " + words
    if job.progress_frames > 1:
        return f"image {job.progress_frame + 1}/{job.progress_frames} · " + words
    return words


def seconds_left(job: Job) -> float | None:
    """A running job's remaining time from its measured seconds per step; an animation's later
    frames cost its `steps` (the average a frame costs) each, other kinds' their current total."""
    total = job.progress_total or job.steps
    if not job.seconds_per_step or not total:
        return None
    later = max(0, (job.progress_frames or job.frames) - job.progress_frame - 1)
    per_later = job.steps if job.kind == JobKind.ANIMATION else total
    return job.seconds_per_step * (max(0, total - job.progress_step) + later * per_later)


def _gobig(job: Job) -> bool:
    """Whether a still enlarges its images with GoBig (its progress frames are then tiles)."""
    try:
        return json.loads(job.spec_json).get("gobig") is True
    except (ValueError, AttributeError):
        return False
