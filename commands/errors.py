"""The commands layer's refusal type: `CommandError`.

A refusal here is always the user's to fix (a bad prompt, an over-large attachment, a cut
schedule the server cannot afford), so it subclasses the engine's `SpecError`: the bot catches
one type, `SpecError`, for every "your input is wrong" answer, and the engine's own
`SpecError`s (a bad weight, an unknown setting) pass through this layer unchanged.

`rule` names the rule that was broken in a short stable form ("max_cuts", "attachment_type",
"prompt_syntax") so the bot can count refusals or link to help; the message itself always
says what is wrong, the rule, and the fix.
"""
from __future__ import annotations

from engine.errors import SpecError


class CommandError(SpecError):
    """A `/disco` request the bot refuses; the message names the rule and the fix."""

    def __init__(self, message: str, param: str | None = None, *, rule: str | None = None):
        super().__init__(message, param)
        self.rule = rule or param
