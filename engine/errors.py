"""The engine's exceptions: one root, so callers (the CLI, the engine loop, the bot) catch one type.

Every message a user can see names the rule that was broken and how to fix it.
"""
from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class SpecError(EngineError, ValueError):
    """A render setting is invalid. The single validation error type of the engine.

    `param` names the setting (``None`` when the problem is not tied to one); the message says
    what is allowed and what to change.
    """

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class ModelError(EngineError):
    """A model is unknown, missing from the cache, or its file is damaged."""


class DownloadError(ModelError):
    """A model file could not be downloaded or failed its checksum."""


class Cancelled(EngineError):
    """The render was cancelled through its cancel check; partial state may have been checkpointed.
    `artifacts`: what the cancelled job still delivers (an animation's finished frames as an MP4)."""

    def __init__(self, message: str = "cancelled", artifacts: tuple[str, ...] = ()):
        super().__init__(message)
        self.artifacts = tuple(artifacts)


class OutOfMemory(EngineError):
    """The GPU ran out of memory; raised after the memory was released, with what to change."""


class QuotaSpent(EngineError):
    """The requester's GPU-time quota ran out part-way through a job of units (a study's cells,
    an animation's frames); `artifacts`: what was finished, still delivered with the failure."""

    def __init__(self, message: str, artifacts: tuple[str, ...] = ()):
        super().__init__(message)
        self.artifacts = tuple(artifacts)
