"""/describe inside the engine process: a still job whose spec has `describe` on is answered
with text, not an image. The spec's `init_image` (the checked upload) is ranked with the spec's
CLIP models (engine/describe/interrogate.py) and the answer written to `describe.json` in the
job folder — the prompt, the CLIP models and each list's best phrases with their scores —
which the bot's poster reads back. Nothing is rendered; the job is billed its seconds like any.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from engine.describe.interrogate import describe_image
from engine.jobs.context import JobContext
from engine.media.files import save_json
from engine.media.stills import read_still
from engine.spec.gobig import MAX_GOBIG_PIXELS
from engine.spec.render import DESCRIBE_ANSWER, RenderSpec


def describe_job(ctx: JobContext, spec: RenderSpec) -> list[str]:
    """The render thread's body for a describe job: its one artifact, `describe.json`."""
    image = read_still(Path(spec.init_image), MAX_GOBIG_PIXELS)

    def run():
        return describe_image(ctx.pool, image, spec.clip_models)

    description = ctx.guarded(run, "out of GPU memory while describing the image; use fewer CLIP models")
    return [str(save_json(ctx.folder / DESCRIBE_ANSWER, asdict(description)))]
