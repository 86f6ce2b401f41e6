"""The files of one queued job under `<data>/jobs/<job_id>/`: images, preview, checkpoint.

Every write is atomic (temp file + rename), so a process killed at any moment leaves either the
old file or the new one. The checkpoint names the image it belongs to and the spec it was made
for; a checkpoint that does not match the job's spec is ignored rather than trusted.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from engine.diffusion.images import write_preview
from engine.diffusion.sampling import SamplerState
from engine.errors import EngineError
from engine.media.files import atomic_write_bytes

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PREVIEW_NAME = "preview.png"
CHECKPOINT_NAME = "checkpoint.pt"


def job_dir(data_dir: Path, job_id: str) -> Path:
    """The job's folder; job ids are checked so none can point outside `data/jobs/`."""
    if not _JOB_ID.match(job_id):
        raise EngineError(f"job id {job_id!r} is not a valid folder name")
    return Path(data_dir) / "jobs" / job_id


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
    """The job's checkpoint if there is one for this very spec; None otherwise (never raises
    for a damaged or foreign file: the job then starts over)."""
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
