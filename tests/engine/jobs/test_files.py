"""A job's files in the engine: the scratch folder filled from blobs at claim (inputs and what
an earlier attempt kept), the spec pointed at the local inputs and turned back for checkpoint
keys, and stale scratch folders of dead engines removed."""
from __future__ import annotations

import json
import os

from engine.jobs.files import materialise, portable
from engine.jobs.scratch import clear_stale_scratch, scratch_dir
from tests.support.storage import async_test, open_db, request

OWNER = "engine:files"


@async_test
async def test_materialise_fills_a_fresh_folder_from_blobs(tmp_path):
    db = await open_db(tmp_path)
    try:
        ref = await db.blobs.put(b"the init image", "init_image_a.png")
        spec = {"init_image": ref, "image_prompts": [{"text": ref, "weight": 1.0}], "steps": 10}
        job = await db.jobs.enqueue(request(spec_json=json.dumps(spec)))
        claimed = await db.leases.claim(OWNER)
        fence = (claimed.attempt, OWNER)
        await db.blobs.put(b"sampler state", "checkpoint.pt", job_id=job.id, role="checkpoint", fence=fence)
        await db.blobs.put(b"a frame", "frames/0000.png", job_id=job.id, role="frame", fence=fence)
        await db.blobs.put(b"old preview", "preview.png", job_id=job.id, role="preview", fence=fence)
        folder = scratch_dir(tmp_path / "engine-data", job.id)
        folder.mkdir(parents=True)
        (folder / "left-over.png").write_bytes(b"from a dead attempt on this host")

        spec_json, inputs, kept = await materialise(db, claimed, folder)
    finally:
        await db.close()
    local = json.loads(spec_json)
    assert local["init_image"] == local["image_prompts"][0]["text"] == next(iter(inputs))
    assert open(local["init_image"], "rb").read() == b"the init image"
    assert local["init_image"].startswith(str(folder / "inputs"))
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "checkpoint.pt", "frames/0000.png", os.path.relpath(local["init_image"], folder)]
    assert {f.name for f in kept} == {"checkpoint.pt", "frames/0000.png"}
    assert json.loads(portable(spec_json, inputs)) == spec  # what checkpoints are keyed by, on any host


def test_scratch_folders_of_engines_that_are_gone_are_removed(tmp_path):
    import socket
    mine = scratch_dir(tmp_path, "01JOB")
    dead = tmp_path / "scratch" / f"{socket.gethostname()}-999999999" / "01OLD"  # no such process
    older = tmp_path / "scratch" / "999999998" / "01OLD"  # named before hosts were
    for folder in (mine, dead, older):
        folder.mkdir(parents=True)
        (folder / "checkpoint.pt").write_bytes(b"x")
    assert sorted(clear_stale_scratch(tmp_path)) == sorted([dead.parent, older.parent])
    assert (mine / "checkpoint.pt").exists() and not dead.parent.exists() and not older.parent.exists()


def test_another_hosts_scratch_folders_are_left_alone(tmp_path):
    """Two workers whose --data-dir is one shared folder (an NFS home, one volume in two
    containers): a process id says nothing about another host's processes, so an engine
    starting on one host must not delete the live scratch folder of an engine on the other."""
    import socket
    other = tmp_path / "scratch" / "gpu-b-999999999" / "01JOB"  # gpu-b's pid; not ours to judge
    other.mkdir(parents=True)
    (other / "checkpoint.pt").write_bytes(b"x")
    assert socket.gethostname() != "gpu-b" and clear_stale_scratch(tmp_path) == []
    assert (other / "checkpoint.pt").exists()
    assert scratch_dir(tmp_path, "01JOB").parent.name == f"{socket.gethostname()}-{os.getpid()}"
