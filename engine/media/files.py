"""Writing files so that a crash never leaves half of one, and what a render leaves on disk:
PNGs carrying their settings in text chunks, JSON, DD's run numbering. Torch-free: the bot
uses it too."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

from PIL import Image, PngImagePlugin


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_png(image: Image.Image, path: Path, text: dict[str, str]) -> Path:
    """PNG with `text` as tEXt/iTXt chunks (readable by any PNG tool). Same input -> same bytes."""
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
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
