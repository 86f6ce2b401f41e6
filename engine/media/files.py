"""Writing files so that a crash never leaves half of one, and what a render leaves on disk:
PNGs carrying their settings in text chunks, JSON, DD's run numbering. Torch-free: the bot
uses it too."""
from __future__ import annotations

import io
import json
import os
import stat
import sys
import tempfile
from pathlib import Path

from PIL import Image, PngImagePlugin

from engine.errors import SpecError

# A settings or spec file: DD's own are a few KB; RenderSpec JSON is capped at 1,000,000 characters.
MAX_SETTINGS_FILE_BYTES = 4 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UMASK = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def read_user_file(path: str | Path, *, what: str, limit: int = MAX_SETTINGS_FILE_BYTES) -> bytes:
    """The bytes of a file a user named (`-` is standard input), refused past `limit` bytes
    (`/dev/zero` too). A pipe or socket is refused: opening a FIFO with no writer would wait forever."""
    if str(path) == "-":
        return _bounded(sys.stdin.buffer, path, what, limit)
    try:
        mode = os.stat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            raise SpecError(f"{what}: {path} is not a regular file; give the path of a file (or - for "
                            f"standard input)")
        with open(path, "rb") as f:
            return _bounded(f, path, what, limit)
    except OSError as exc:
        raise SpecError(f"{what}: cannot read {path} ({exc.strerror or exc}); check the path and its "
                        f"permissions") from None


def _bounded(f, path: str | Path, what: str, limit: int) -> bytes:
    data = f.read(limit + 1)
    if len(data) > limit:
        raise SpecError(f"{what}: {path} is over {limit:,} bytes, the most read from one file; "
                        f"give the settings file itself")
    return data


def temp_beside(path: Path, suffix: str = "") -> tuple[int, str]:
    """A new hidden temp file in `path`'s folder, to be renamed over `path` (its fd and name).
    mkstemp makes it readable by its owner only; an output gets the mode any new file gets here
    (umask), so the images and videos can be shared like the user's other files."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, tmp


def _written_temp(path: Path, data: bytes) -> str:
    """`data` in a new temp file beside `path`, fsynced and closed; its name."""
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _written_temp(path, data)
    try:
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
    """A PNG's text chunks ({} for an image of another format)."""
    with Image.open(path) as image:
        image.load()
        return dict(getattr(image, "text", {}))


def png_settings(path: str | Path) -> str | None:
    """The settings a PNG of ours carries (its `disco_settings` text chunk, written before the
    pixels, so none are decoded); None for any other file. Only a regular file is opened: a FIFO
    with no writer would wait forever."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with Image.open(path) as image:
            return image.info.get("disco_settings") if image.format == "PNG" else None
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def save_json(path: Path, data: dict) -> Path:
    atomic_write_bytes(path, _json_bytes(data))
    return path


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode()


def next_run_number(out_dir: Path, batch_name: str) -> int:
    """DD's run numbering: the first N with no `{batch}({N})_settings.txt` in the folder."""
    n = 0
    while (out_dir / settings_name(batch_name, n)).exists():
        n += 1
    return n


def settings_name(batch_name: str, run: int) -> str:
    return f"{batch_name}({run})_settings.txt"


def save_new_run_settings(out_dir: Path, batch_name: str, data: dict) -> int:
    """Save a new run's settings file under the first free run number and return the number.
    The file appears whole and only where none was (a hard link of a finished temp file), so
    two renders into one folder at once never take the same number."""
    first = next_run_number(out_dir, batch_name)
    tmp = _written_temp(out_dir / settings_name(batch_name, first), _json_bytes(data))
    try:
        for run in range(first, first + 10_000):
            try:
                os.link(tmp, out_dir / settings_name(batch_name, run))
                return run
            except FileExistsError:
                continue  # another render took it a moment ago
        raise OSError(f"no free run number for {batch_name} in {out_dir}")
    finally:
        Path(tmp).unlink(missing_ok=True)
