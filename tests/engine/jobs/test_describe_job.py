"""A describe job through the engine process: nothing rendered, `describe.json` holding the same
answer as the ranking itself, billed like any job; a spec without an image is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.describe.interrogate import describe_image
from engine.errors import SpecError
from engine.spec.render import SCHEMA_VERSION, RenderSpec
from storage import JobRequest
from tests.support.engine import tiny_pool
from tests.support.jobs import blob_bytes, job_files, names, run_reporting

CLIP = ["ViT-B-32::openai"]


def test_a_describe_job_answers_in_describe_json(tmp_path):
    image = tmp_path / "pic.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB").save(image)
    spec = RenderSpec.from_dict({"text_prompts": "an image to describe", "describe": True, "init_image": str(image),
                                 "clip_models": CLIP, "width": 64, "height": 64, "seed": 1})
    job, _, _ = run_reporting(tmp_path, JobRequest(
        guild_id=1, channel_id=2, user_id=3, kind="still", spec_json=spec.to_json(), spec_version=SCHEMA_VERSION,
        model_set="test-tiny", width=64, height=64, steps=1, seed=1))
    assert job.state == "succeeded", job.error_message
    assert names(job.artifacts) == ("describe.json",)
    answer = json.loads(blob_bytes(tmp_path, job.artifacts[0]))
    expected = describe_image(tiny_pool(), Image.open(image), CLIP)
    assert answer["prompt"] == expected.prompt and answer["clip_models"] == CLIP
    assert [r["phrase"] for r in answer["ranked"]["flavors"]] == [r.phrase for r in expected.ranked["flavors"]]
    assert not [name for name in job_files(tmp_path, job.id) if name.endswith(".png")]  # nothing rendered
    assert job.gpu_seconds > 0


def test_describe_needs_an_image():
    with pytest.raises(SpecError, match="describe: there is no image to describe"):
        RenderSpec.from_dict({"describe": True})
