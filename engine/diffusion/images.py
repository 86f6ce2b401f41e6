"""Images and tensors: the one conversion each way, and small previews (`preview`, and
`write_preview`, the one writer of a preview PNG: the jobs' preview.png, the CLI's progress.png).

The pipeline works in [-1, 1] (`to_pil`, `image_to_tensor`); animation frames in [0, 1]
(`unit_to_pil`, `pil_to_unit`). Both go through the same rounding, so a frame saved and read
back is the tensor an uninterrupted run carried forward.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.media.files import atomic_write_bytes

PREVIEW_SIDE = 256


def unit_to_pil(x: torch.Tensor) -> Image.Image:
    """[1, 3, H, W] in [0, 1] -> an RGB image (values outside the range are clipped)."""
    array = x[0].detach().float().clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")


def pil_to_unit(image: Image.Image, device: torch.device) -> torch.Tensor:
    """An RGB image -> [1, 3, H, W] float32 in [0, 1] on `device`."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    # contiguous: the permuted HWC array would be a channels-last tensor, and convolutions on
    # that layout sum in another order, so a frame read back from its PNG would render a few
    # 8-bit levels apart from the same values handed over in memory (a resumed animation).
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous().to(device)


def to_pil(x: torch.Tensor) -> Image.Image:
    """[1, 3, H, W] in [-1, 1] -> an RGB image (values outside the range are clipped)."""
    return unit_to_pil(x.detach().float().add(1).div(2))


def image_to_tensor(image: Image.Image, width: int, height: int, device: torch.device) -> torch.Tensor:
    """An init image resized (Lanczos) to the render size, as [1, 3, H, W] in [-1, 1]."""
    resized = image.convert("RGB").resize((width, height), Image.LANCZOS)
    return pil_to_unit(resized, device).mul(2).sub(1)


def preview(x: torch.Tensor | Image.Image, max_side: int = PREVIEW_SIDE) -> Image.Image:
    """A small RGB copy of the image (a [1, 3, H, W] tensor in [-1, 1], or a picture) for
    progress messages; the caller's image is left as it was."""
    image = to_pil(x) if isinstance(x, torch.Tensor) else x.convert("RGB")
    image.thumbnail((max_side, max_side), Image.LANCZOS)
    return image


def write_preview(x: torch.Tensor | Image.Image, path: Path, max_side: int = PREVIEW_SIDE) -> Path:
    """`preview(x, max_side)` as a PNG at `path`, written atomically: whoever shows it (the bot,
    an image viewer) never reads half a file."""
    buffer = io.BytesIO()
    preview(x, max_side).save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
