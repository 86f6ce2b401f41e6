"""bot/checks.py without Discord: the job id in what a member typed or pasted."""
from __future__ import annotations

import pytest

from bot.checks import typed_job_id

JOB = "01M97YSJA9W0YQ8AV9410Y9AHY"


@pytest.mark.parametrize("typed", [JOB, f"`{JOB}`", f"job `{JOB}`", f" {JOB}\n", f"**Queued** `{JOB}` · next",
                                   JOB.lower()])
def test_the_id_is_found_in_what_was_pasted(typed):
    assert typed_job_id(typed).upper() == JOB


@pytest.mark.parametrize("typed", ["nope", JOB[:20], JOB + "X", "@everyone"])
def test_anything_else_is_left_as_typed_for_the_refusal(typed):
    assert typed_job_id(typed) == typed
