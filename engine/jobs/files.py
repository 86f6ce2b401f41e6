"""The files of one attempt of a queued job in the worker's own scratch folder
(`<data>/scratch/<host>-<pid>/<job_id>/`): inputs, images, preview, checkpoint, frames, cells.

The scratch folder is this process's alone and lives only as long as the attempt: what must
outlive it (inputs, checkpoints, finished images, frames and cells, results) is a blob in the
database (storage/blobs.py), pushed by `JobContext.push` and brought back by `materialise`
at the next claim, on whatever host that is.

Every write is atomic (temp file + rename), so a process killed at any moment leaves either the
old file or the new one. The checkpoint names the image it belongs to and the spec it was made
for; a checkpoint that does not match the job's spec is ignored rather than trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from engine.diffusion.images import write_preview
from engine.diffusion.sampling import SamplerState
from engine.media.files import atomic_write_bytes
from storage import Database, Job, JobFile, parse_ref
from storage.blobs import RESUME_ROLES

PREVIEW_NAME = "preview.png"
CHECKPOINT_NAME = "checkpoint.pt"


async def materialise(db: Database, job: Job, folder: Path
                      ) -> tuple[str, dict[str, str], list[JobFile]]:
    """A fresh `folder` holding what an earlier attempt kept (checkpoint, finished images,
    frames, cells: their blobs under their names) and the job's inputs (under
    `inputs/<sha>/<name>`). Returns the spec with each blob reference replaced by its local
    file, the map local file → reference (`portable` turns the spec back), and the files kept."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    kept = await db.blobs.job_files(job.id, RESUME_ROLES)
    for file in kept:
        await db.blobs.save_to(file.ref, folder / file.name)
    inputs: dict[str, str] = {}

    async def local(value: object) -> object:
        if isinstance(value, dict):
            return {key: await local(item) for key, item in value.items()}
        if isinstance(value, list):
            return [await local(item) for item in value]
        ref = parse_ref(value)
        if ref is None:
            return value
        path = folder / "inputs" / ref.sha256[:16] / ref.name
        if str(path) not in inputs:
            await db.blobs.save_to(str(value), path)
            inputs[str(path)] = str(value)
        return str(path)

    if "blob:" not in job.spec_json:
        return job.spec_json, inputs, kept
    return json.dumps(await local(json.loads(job.spec_json))), inputs, kept


def portable(spec_json: str, inputs: dict[str, str]) -> str:
    """The spec with this process's input files named by their blobs again: what a checkpoint
    is keyed by, so another host's attempt recognises it."""
    if not inputs:
        return spec_json

    def swap(value: object) -> object:
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return inputs.get(value, value) if isinstance(value, str) else value

    return json.dumps(swap(json.loads(spec_json)), sort_keys=True)


def spec_digest(spec_json: str) -> str:
    return hashlib.sha256(spec_json.encode()).hexdigest()


@dataclass
class Checkpoint:
    image_index: int
    state: SamplerState
    spec_sha256: str


def save_checkpoint(folder: Path, checkpoint: Checkpoint) -> Path:
    payload = {"image_index": checkpoint.image_index, "spec_sha256": checkpoint.spec_sha256,
               "state": checkpoint.state.to_payload()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = folder / CHECKPOINT_NAME
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(folder: Path, spec_json: str, device: torch.device | str) -> Checkpoint | None:
    """The job's checkpoint if there is one for this very spec (`spec_json` as `portable`
    gives it); None otherwise (never raises for a damaged or foreign file: the job then starts
    over)."""
    path = folder / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload["spec_sha256"] != spec_digest(spec_json):
            return None
        return Checkpoint(int(payload["image_index"]), SamplerState.from_payload(payload["state"], device),
                          payload["spec_sha256"])
    except Exception:  # a torn or foreign file: starting over is always safe
        return None


def save_preview(folder: Path, image: torch.Tensor | Image.Image, max_side: int = 512) -> Path:
    """The job's preview.png: the image being diffused (a tensor) or a finished one (a picture)."""
    return write_preview(image, folder / PREVIEW_NAME, max_side)
