"""GoBig through the engine process on the test-tiny models: a 64×64 image enlarged to a
128×128 PNG, every tile re-diffused and counted in the progress, each tile billed, a render
then enlarged in one job, and a resume after kill -9 mid-tile that keeps the finished tiles."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.diffusion.gobig import tile_path
from engine.media.files import read_png_text
from engine.media.tiles import tile_grid
from engine.spec.render import SCHEMA_VERSION, RenderSpec
from storage import JobRequest
from tests.support.engine import ANIMATION_RENDER
from tests.support.jobs import blob_bytes, blob_file, job_files, run_reporting, with_db

# Small and quick: 2 cuts, no LPIPS (init_scale 0); 10 steps of which each tile runs 4.
GOBIG = {**ANIMATION_RENDER, "steps": 10, "init_scale": 0, "gobig": True, "gobig_overlap": 16}


def source_image(path: Path) -> Path:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB").save(path)
    return path


def gobig_request(spec: RenderSpec, frames: int = 1) -> JobRequest:
    return JobRequest(guild_id=1, channel_id=2, user_id=3, kind="still", spec_json=spec.to_json(),
                      spec_version=SCHEMA_VERSION, model_set="test-tiny", width=spec.width,
                      height=spec.height, steps=spec.steps, frames=frames, seed=spec.seed)


def test_gobig_of_a_64_image_gives_a_128_png_with_every_tile_rediffused(tmp_path):
    source = source_image(tmp_path / "result.png")
    spec = RenderSpec.from_dict({**GOBIG, "gobig_init": str(source)})
    job, ledger, seen = run_reporting(tmp_path, gobig_request(spec, frames=9))
    assert job.state == "succeeded", job.error_message
    assert len(job.artifacts) == 1
    out = blob_file(tmp_path, job.artifacts[0])
    with Image.open(out) as image:
        assert image.size == (128, 128)
    assert RenderSpec.from_json(read_png_text(out)["disco_settings"]).gobig_init == str(source)
    # Every tile was diffused (its own PNG at the tile size, kept as the job's blob) and
    # reported as tile k of 9.
    kept = job_files(tmp_path, job.id)
    tiles = tile_grid(128, 128, 64, 64, 16)
    for t in tiles:
        name = tile_path(Path("gobig") / "0", t).as_posix()
        assert kept[name] == "frame"
        ref = next(r for r in _refs(tmp_path, job.id) if r.endswith("/" + name))
        assert Image.open(blob_file(tmp_path, ref)).size == (64, 64)
    assert {frame for frame, frames, _ in seen if frames == 9} == set(range(9))
    assert job.progress_frames == 9 and job.progress_frame == 8
    # The diffusion changed the Lanczos enlargement (it is not a plain resize).
    plain = np.asarray(Image.open(source).resize((128, 128), Image.Resampling.LANCZOS), dtype=float)
    assert np.abs(np.asarray(Image.open(out), dtype=float) - plain).mean() > 2
    # Each tile was billed as it finished; complete billed only the balance.
    charges = [e for e in ledger if e.kind == "charge"]
    assert len(charges) == 10 and abs(sum(e.gpu_seconds for e in charges) - job.gpu_seconds) < 1e-6


def test_a_render_with_gobig_on_is_rendered_then_enlarged(tmp_path):
    spec = RenderSpec.from_dict({**GOBIG, "steps": 4, "n_batches": 1})
    job, _, seen = run_reporting(tmp_path, gobig_request(spec))
    assert job.state == "succeeded", job.error_message
    assert job_files(tmp_path, job.id)[f"{spec.batch_name}(0)_0.png"] == "output"  # the render is kept
    assert [Image.open(blob_file(tmp_path, p)).size for p in job.artifacts] == [(128, 128)]
    assert {frames for _, frames, _ in seen} >= {9}


@pytest.mark.e2e
def test_kill_9_mid_tile_resumes_keeping_the_finished_tiles(tmp_path):
    """A real engine is killed once the second tile is being diffused; the next engine keeps
    tile 1, re-diffuses the rest, and the PNG equals an uninterrupted job's."""
    from tests.engine.jobs.test_worker import kill_after_first_unit_and_resume

    source = source_image(tmp_path / "result.png")
    # 5 steps: each tile runs 2 (the point is which tiles are kept, not how many steps they take).
    spec = RenderSpec.from_dict({**GOBIG, "steps": 5, "gobig_init": str(source)})

    async def enqueue(db):
        return [(await db.jobs.enqueue(gobig_request(spec, frames=9))).id for _ in range(2)]

    crashed, reference = asyncio.run(with_db(tmp_path, enqueue))
    resumed, whole = kill_after_first_unit_and_resume(tmp_path, crashed, reference, "gobig/0/tile(0)_0.png")
    png = blob_bytes(tmp_path, json.loads(resumed["artifacts_json"])[0])
    assert png == blob_bytes(tmp_path, json.loads(whole["artifacts_json"])[0])


def _refs(data: Path, job_id: str) -> list[str]:
    """blob references of every file job `job_id` keeps."""
    import sqlite3

    from storage import blob_ref
    conn = sqlite3.connect(data / "disco.db", timeout=10)
    try:
        return [blob_ref(sha, name) for name, sha in
                conn.execute("SELECT name, sha256 FROM job_files WHERE job_id = ?", (job_id,))]
    finally:
        conn.close()
