"""A job's kind and state, as enums: every place that names one uses these (they compare equal
to the strings stored in the database)."""
from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    """What a job renders; the engine has one handler per kind."""

    STILL = "still"          # one or more images of a RenderSpec
    ANIMATION = "animation"  # an AnimationSpec, frame by frame
    STUDY = "study"          # a StudySpec, cell by cell


class JobState(StrEnum):
    """queued → running → succeeded | failed | cancelled | dead (no attempts left)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"


ACTIVE = frozenset({JobState.QUEUED, JobState.RUNNING})
TERMINAL = frozenset(set(JobState) - ACTIVE)
RETRYABLE = frozenset({JobState.FAILED, JobState.DEAD, JobState.CANCELLED})
