"""Writing files so that a crash never leaves half of one, and what a render leaves on disk:
PNGs carrying their settings in text chunks, JSON, DD's run numbering. Torch-free: the bot
uses it too."""
from __future__ import annotations

import io
import json
import os
import stat
import struct
import sys
import zlib
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


PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
MAX_PNG_CHUNKS = 256  # chunks walked before the pixels; ours write a handful


class PngTextTooLarge(SpecError):
    """A PNG's text chunk is larger than the caller's bound (`key`: its name)."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(f"the PNG's {key} text is {size:,} bytes; at most {limit:,}")
        self.key, self.size, self.limit = key, size, limit


def png_text_in_bytes(data: bytes, keys: tuple[str, ...], limit: int) -> dict[str, str]:
    """The text chunks named `keys` of a PNG held in memory ({} for any other data), read chunk
    by chunk with Pillow's chunk reader up to the first pixel data: a chunk of another name is
    skipped unread, only a chunk named in `keys` is decoded (decompressed within Pillow's
    MAX_TEXT_CHUNK), and no pixel is decoded. Pillow's `Image.open` would decode every text
    chunk before the pixels (up to MAX_TEXT_MEMORY, 64 MiB); this reads at most `limit` bytes
    of text per key and walks at most MAX_PNG_CHUNKS chunks. PngTextTooLarge when a wanted
    chunk is over `limit` bytes, stored or decompressed."""
    if not data.startswith(PNG_SIGNATURE):
        return {}
    fp = io.BytesIO(data)
    fp.seek(len(PNG_SIGNATURE))
    stream = PngImagePlugin.PngStream(fp)
    wanted = {key.encode("latin-1") + b"\0": key for key in keys}
    found: dict[str, str] = {}
    for _ in range(MAX_PNG_CHUNKS):
        try:
            cid, pos, length = stream.read()
        except (SyntaxError, struct.error, ValueError):  # cut short or not a chunk: nothing more to read
            break
        if cid in (b"IDAT", b"IEND") or pos + length > len(data):
            break
        key = next((k for prefix, k in wanted.items() if data.startswith(prefix, pos)), None)
        if cid in PNG_TEXT_CHUNKS and key is not None and key not in found:
            if length > limit:
                raise PngTextTooLarge(key, length, limit)
            try:
                stream.call(cid, pos, length)
            except ValueError:  # Pillow's bound on a decompressed chunk
                raise PngTextTooLarge(key, PngImagePlugin.MAX_TEXT_CHUNK, limit) from None
            except (zlib.error, UnicodeError):
                pass  # a damaged chunk carries nothing readable
            value = stream.im_text.pop(key, None)
            if value is not None:
                if len(value.encode("utf-8")) > limit:
                    raise PngTextTooLarge(key, len(value.encode("utf-8")), limit)
                found[key] = str(value)
        fp.seek(pos + length + 4)  # past the chunk and its CRC
    return found


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
