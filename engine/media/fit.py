"""Fitting an MP4 under an upload limit (Discord's 10 MiB and up): re-encoded at the bitrate that
fills the limit over its duration, at a smaller size when that bitrate would smear it."""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.media.files import temp_beside
from engine.media.video import (DEFAULT_PRESET, FIRST_VIDEO, VideoLimits, ffmpeg_said, human_size, input_args,
                                probe_video, run_ffmpeg)


@dataclass(frozen=True)
class FitResult:
    path: Path
    size: int                      # bytes of the final file
    width: int
    height: int
    bitrate: int | None            # bits/s of the last encode, None when the input was copied as is
    changes: tuple[str, ...]       # what was done, in words, empty when nothing had to change


_TARGET_FILL = 0.92          # aim below the limit: single-pass rate control overshoots by a few percent
_MIN_SIDE = 64               # smaller than this is not worth posting
# Below about 0.04 bits per pixel per frame H.264 turns to smeared blocks; a smaller picture at a
# sane bits-per-pixel looks better, so the resolution drops before the first encode.
_MIN_BPP = 0.04


def _reencode(src: Path, dst: Path, *, bitrate: int, width: int, height: int, fps: float | None,
              timeout: float) -> int:
    """Re-encode `src` into `dst` at `bitrate` bits/s and width x height; returns the new size in bytes."""
    extra = ["-r", f"{fps:g}"] if fps else []
    done = run_ffmpeg([*input_args(src), "-map", FIRST_VIDEO, "-vf", f"scale={width}:{height}:flags=lanczos", *extra,
                 "-c:v", "libx264", "-preset", DEFAULT_PRESET, "-b:v", str(bitrate), "-maxrate", str(bitrate),
                 "-bufsize", str(bitrate * 2), "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an",
                 "-f", "mp4", "-y", f"file:{dst}"], timeout, "re-encoding the video")
    if done.returncode != 0:
        raise EngineError(f"ffmpeg failed to re-encode {src.name}: {ffmpeg_said(done.stderr)}")
    return dst.stat().st_size


def fit_to_size(path_in: str | os.PathLike, path_out: str | os.PathLike, *, max_bytes: int,
                fps: float | None = None, min_side: int = _MIN_SIDE, timeout: float = 600.0) -> FitResult:
    """`path_in` as an MP4 of at most `max_bytes` (e.g. Discord's 10 MiB) at `path_out`.

    A file already small enough is copied unchanged. Otherwise it is re-encoded at the bitrate that
    fills 92% of the limit over its duration (at a smaller size first if that bitrate is under
    0.04 bits per pixel per frame), and twice more with a bitrate corrected by the miss; then the
    resolution steps down by 3/4 (two encodes per step) while both sides stay >= `min_side`.
    Raises EngineError rather than ever returning a file over the limit. `fps` sets a new frame rate."""
    src, out = Path(path_in), Path(path_out)
    size = src.stat().st_size
    own = VideoLimits(max_bytes=2**62, max_duration_s=1e9, max_side=2**16, timeout_s=timeout)
    info = probe_video(src, limits=own)
    out.parent.mkdir(parents=True, exist_ok=True)
    if size <= max_bytes and fps is None:
        if src.resolve() != out.resolve():
            _atomic_copy(src, out)
        return FitResult(out, size, info.width, info.height, None, ())
    duration = max(info.duration, info.frames / info.fps, 1e-3)
    # The MP4 index costs a few bytes per frame plus a fixed header; leave room for it.
    budget = _TARGET_FILL * max_bytes - 1024 - 24 * info.frames
    impossible = EngineError(f"The video cannot be made to fit {human_size(max_bytes)} at {min_side} pixels per "
                             "side or more; render fewer frames or a shorter clip, or post it as frames.")
    if budget <= 0:
        raise impossible
    target = int(budget * 8 / duration)
    rate = fps or info.fps
    width, height = info.width, info.height
    bpp = target / (width * height * rate)
    if bpp < _MIN_BPP:
        factor = min(1.0, max(math.sqrt(bpp / _MIN_BPP), min_side / min(width, height)))
        width, height = _even_side(width * factor), _even_side(height * factor)
    fd, tmp_name = temp_beside(out, ".mp4")
    os.close(fd)
    tmp = Path(tmp_name)
    tries, changes = 3, []
    try:
        while True:
            bitrate = target
            for _ in range(tries):
                bitrate = max(bitrate, 1000)
                got = _reencode(src, tmp, bitrate=bitrate, width=width, height=height, fps=fps,
                                timeout=timeout)
                if got <= max_bytes:
                    os.replace(tmp, out)
                    changes.append(f"re-encoded at {bitrate // 1000} kbit/s to fit {human_size(max_bytes)} "
                                   f"(was {human_size(size)})")
                    if (width, height) != (info.width, info.height):
                        changes.append(f"scaled from {info.width}x{info.height} to {width}x{height}")
                    if fps:
                        changes.append(f"frame rate set to {fps:g}")
                    return FitResult(out, got, width, height, bitrate, tuple(changes))
                bitrate = int(bitrate * (_TARGET_FILL * max_bytes / got) * 0.95)
            width, height = _even_side(width * 0.75), _even_side(height * 0.75)
            tries = 2
            if min(width, height) < min_side:
                raise impossible
    finally:
        tmp.unlink(missing_ok=True)


def _even_side(x: float) -> int:
    return max(2, int(x) // 2 * 2)


def _atomic_copy(src: Path, dst: Path) -> None:
    fd, tmp = temp_beside(dst)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already after a successful replace
