"""The gpu_memory rule at enqueue: refused with what it needs and what would fit; off when the
server's GPU memory is unknown."""
from __future__ import annotations

import pytest

from commands.errors import CommandError
from commands.gpu_memory import check_gpu_memory
from commands.job_options import DiscoOptions, JobLimits, build_job
from engine.spec.render import RenderSpec


def test_unknown_gpu_memory_refuses_nothing():
    check_gpu_memory(RenderSpec.from_dict({"text_prompts": "x", "clip_models": ["RN50x64::openai"]}), 0.0)


def test_too_big_a_job_is_refused_with_the_rule_and_a_fix():
    options = DiscoOptions(prompt="a lighthouse", width=1280, height=768,
                           settings="clip_models=ViT-B-32::openai,RN50x64::openai")
    with pytest.raises(CommandError) as caught:
        build_job(options, limits=JobLimits(max_pixels=2_000_000, gpu_memory_gb=6.0))
    assert caught.value.rule == "gpu_memory"
    message = str(caught.value)
    assert "needs ~" in message and "this server's GPU has 6 GB" in message and "gpu_memory" in message
    assert "use " in message or "drop " in message


def test_a_job_that_fits_is_queued():
    parsed = build_job(DiscoOptions(prompt="a lighthouse", width=512, height=512),
                       limits=JobLimits(gpu_memory_gb=80.0))
    assert parsed.spec.width == 512
