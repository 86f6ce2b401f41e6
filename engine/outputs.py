"""What a render leaves on disk: PNGs carrying their full settings, DD-style settings files,
intermediate saves and small previews."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from .files import atomic_write_bytes

PREVIEW_SIDE = 256


def to_pil(x: torch.Tensor) -> Image.Image:
    """[1, 3, H, W] in [-1, 1] -> an RGB image (values outside the range are clipped)."""
    array = x[0].detach().float().add(1).div(2).clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")


def preview(x: torch.Tensor, max_side: int = PREVIEW_SIDE) -> Image.Image:
    """A small copy of the image for progress messages."""
    image = to_pil(x)
    image.thumbnail((max_side, max_side), Image.LANCZOS)
    return image


def save_png(image: Image.Image, path: Path, text: dict[str, str]) -> Path:
    """PNG with `text` as tEXt/iTXt chunks (readable by any PNG tool). Same input -> same bytes."""
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_png_text(path: Path) -> dict[str, str]:
    with Image.open(path) as image:
        image.load()
        return dict(image.text)


def save_json(path: Path, data: dict) -> Path:
    atomic_write_bytes(path, (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode())
    return path


def next_run_number(out_dir: Path, batch_name: str) -> int:
    """DD's run numbering: the first N with no `{batch}({N})_settings.txt` in the folder."""
    n = 0
    while (out_dir / f"{batch_name}({n})_settings.txt").exists():
        n += 1
    return n


def image_to_tensor(image: Image.Image, width: int, height: int, device: torch.device) -> torch.Tensor:
    """An init image resized (Lanczos) to the render size, as [1, 3, H, W] in [-1, 1]."""
    image = image.convert("RGB").resize((width, height), Image.LANCZOS)
    array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    return array.permute(2, 0, 1)[None].to(device).mul(2).sub(1)
