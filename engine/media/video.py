"""Video in and out: probing and frame extraction for video init, MP4 assembly (fitting an MP4
under Discord's upload limit: engine.media.fit; previews and VR side-by-side frames:
engine.media.previews).

Every ffmpeg call uses imageio-ffmpeg's bundled binary. A user's video is treated as hostile input:
only a local regular file is opened (no URLs, `concat:` or other protocols, no pipes or devices),
ffmpeg gets `-protocol_whitelist file` and a demuxer whitelist (a crafted file cannot pull in an
HLS playlist or an image sequence), every run has a wall-clock timeout, and the probe enforces
bounds on file size, then on the header's duration and resolution, then on the frame count, before
anything is decoded. A file whose end is missing or damaged is refused by the probe (which, where a
user's file comes in, decodes every frame), not by the render when it reaches the missing frames.

Frames are numpy uint8 arrays [H, W, 3] (RGB) or PIL images wherever frames are accepted.
"""
from __future__ import annotations

import itertools
import math
import os
import re
import stat
import subprocess
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np
from PIL import Image, ImageSequence

from engine.errors import EngineError, SpecError
from engine.media.files import temp_beside
from engine.media.stills import still_format_of

PARAM = "video_init_path"
# Containers a user may upload. Deliberately no hls, concat, image2 or other demuxers that open
# further files by name; the mov demuxer registers as "mov,mp4,m4a,3gp,3g2,mj2".
DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif"
# 'medium' rather than DD's 'veryslow': at crf 17 the files differ by a few percent, while veryslow
# takes several times the CPU, which the render worker would rather spend on diffusion.
DEFAULT_PRESET = "medium"


@dataclass(frozen=True)
class VideoLimits:
    """Bounds a user's video must respect; the defaults suit a Discord bot rendering on one GPU."""

    max_bytes: int = 200 * 1024 * 1024
    max_duration_s: float = 120.0
    max_side: int = 1920          # both width and height
    max_frames: int = 1000        # frames rendered, i.e. after every-nth selection
    timeout_s: float = 120.0      # wall clock per ffmpeg run


DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int        # counted from the stream's packets, not taken from the header
    duration: float    # seconds
    codec: str


def ffmpeg_exe() -> str:
    import imageio_ffmpeg  # imported lazily: it looks up the binary on import
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], timeout: float, what: str,
               log: BinaryIO | None = None) -> subprocess.CompletedProcess:
    """ffmpeg with `args`; its messages in the result, or in the file `log` when given."""
    out = {"capture_output": True} if log is None else {"stdout": subprocess.DEVNULL, "stderr": log}
    try:
        return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], timeout=timeout, check=False, **out)
    except subprocess.TimeoutExpired as err:
        raise EngineError(f"ffmpeg took longer than {timeout:.0f} s while {what}; it was stopped.") from err


def human_size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


# What ffmpeg prints when asked only for a file's header: true of every probe, so never the reason.
_NO_OUTPUT = "At least one output file must be specified"


def ffmpeg_said(stderr: bytes, lines: int = 3) -> str:
    text = [line for line in stderr.decode("utf-8", "replace").strip().splitlines()
            if line.strip() and _NO_OUTPUT not in line]
    shown = (re.sub(r"^(?:\[[^]]*@ 0x[0-9a-f]+\] )+", "", line.strip()) for line in text[-lines:])
    return " | ".join(shown) or "no message"


# ---- safe input ---------------------------------------------------------------------------------

def safe_input_path(path: str | os.PathLike, *, allowed_dir: str | os.PathLike | None = None,
                    limits: VideoLimits = DEFAULT_LIMITS) -> Path:
    """`path` resolved to a local regular file within the size bound, or SpecError.

    Names with a scheme ("http://", "concat:", "pipe:" ...) are refused before touching the file
    system; with `allowed_dir` the resolved path (symlinks followed) must stay inside that folder."""
    text = os.fspath(path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", text) and not re.match(r"^[A-Za-z]:[\\/]", text):
        raise SpecError(f"{PARAM} must be a local video file, not a URL or ffmpeg protocol ({text[:60]!r}). "
                        "Attach the video to the command instead.", PARAM)
    resolved = Path(text).resolve()
    if allowed_dir is not None:
        root = Path(allowed_dir).resolve()
        if not resolved.is_relative_to(root):
            raise SpecError(f"{PARAM} must be a file inside {root}; {text!r} points elsewhere. "
                            "Attach the video to the command instead.", PARAM)
    try:
        st = resolved.stat()
    except OSError as err:
        raise SpecError(f"{PARAM}: cannot read {text!r} ({err.strerror}). Check the file exists.", PARAM) from err
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(f"{PARAM} must be a regular file; {text!r} is a folder, pipe or device.", PARAM)
    if st.st_size > limits.max_bytes:
        raise SpecError(f"{PARAM}: the video is {human_size(st.st_size)}, over the limit of "
                        f"{human_size(limits.max_bytes)}. Trim or compress it first.", PARAM)
    return resolved


def input_args(path: Path, limits: VideoLimits | None = None) -> list[str]:
    """ffmpeg's input options for a user's file. With `limits`, a frame over their pixels (a
    stream whose size changes after the header the probe checked) is not decoded: a crafted
    frame could ask ffmpeg for gigabytes."""
    # "file:" prefix: a name containing ':' is never taken for a protocol.
    pixels = ["-max_pixels", str(min(limits.max_side ** 2, 2**31 - 1))] if limits else []  # an int option
    return [*pixels, "-protocol_whitelist", "file", "-format_whitelist", DEMUXERS, "-i", f"file:{path}"]


# ---- probing and extraction ---------------------------------------------------------------------

_STREAM = re.compile(r"Stream #0:\d+.*?: Video: (\w+).*?, (\d{1,5})x(\d{1,5})\b")
_STREAM_NUMBER = re.compile(r"Stream #0:(\d+)")
# The first video stream that is not a still: ffmpeg's "V" leaves out a song's cover art (an
# "attached pic"), which a sound file with a cover would otherwise pass as a one-frame video.
FIRST_VIDEO = "0:V:0"
_RATE = re.compile(r"Video: .*?, ([\d.]+)(k?) (?:fps|tbr)")  # ffmpeg prints 1000 fps as "1k fps"
_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)  # a phone's portrait video
_RETRY = "Export it again as MP4 (H.264)"


def probe_video(path: str | os.PathLike, *, limits: VideoLimits = DEFAULT_LIMITS,
                allowed_dir: str | os.PathLike | None = None, decode: bool = False) -> VideoInfo:
    """Size, rate, exact frame count, duration and codec of the first video stream, checked against
    `limits` (file size, duration, resolution); a file whose end is missing or damaged is refused.
    Frame count after every-nth selection is checked by `check_selection`, which `iter_frames` calls.

    `decode`: decode every frame, as the render will, rather than only count packets: it also finds
    damage inside packets (a zeroed or overwritten end), at the cost of a decode of the whole video
    (about 25 s of CPU for the largest the limits allow), so it is for where a user's file comes
    in (an upload, the command line), not for every read."""
    src = safe_input_path(path, allowed_dir=allowed_dir, limits=limits)
    if image := _still_image(src):
        raise SpecError(f"{PARAM}: the file is a {image} image, not a video. Give a video (MP4, MOV, "
                        "WebM, AVI or GIF), or start the animation from the image as its init_image.", PARAM)
    # 1. The header alone (ffmpeg with no output reads nothing more): refused on its declared
    # duration and size before a packet is read.
    header = _probe_run(input_args(src), limits, "reading the video's header")
    log = header.stderr.decode("utf-8", "replace")
    stream = next((found for found in _STREAM.finditer(log)
                   if "(attached pic)" not in log[found.start():log.find("\n", found.start())]), None)
    if stream is None:
        raise _no_video_stream(src, log, header.stderr)
    codec, width, height = stream.group(1), int(stream.group(2)), int(stream.group(3))
    turned = _ROTATION.search(log[stream.start():])
    if turned and round(float(turned.group(1))) % 180 == 90:  # ffmpeg turns the frames upright
        width, height = height, width
    rate = _RATE.search(log, stream.start())
    fps = float(rate.group(1)) * (1000 if rate.group(2) else 1) if rate else 0.0
    stamp = _DURATION.search(log)
    declared = int(stamp.group(1)) * 3600 + int(stamp.group(2)) * 60 + float(stamp.group(3)) if stamp else None
    _check_bounds(declared or 0.0, width, height, limits)
    if "Input #0, mov," in log:  # MP4 and MOV: the index says where every frame lies
        listed, whole = _indexed_frames(src, int(_STREAM_NUMBER.match(stream.group(0)).group(1)), limits)
        if whole < listed:
            raise _damaged(listed, whole, "the file ends before the last frames its index lists")
    # 2. The frames, counted (never past the duration limit, whatever the header said).
    frames = _count_frames(src, limits, decode=decode)
    if codec == "gif" and _gif_cut_short(src):  # ffmpeg drops a cut GIF's last frame unsaid
        raise _damaged(frames, frames, "the GIF's last frame is cut short")
    if frames <= 0 or fps <= 0:
        raise SpecError(f"{PARAM}: the video has no frames ffmpeg can read. {_RETRY}.", PARAM)
    duration = declared if declared is not None else frames / fps
    _check_bounds(duration, width, height, limits)
    return VideoInfo(width, height, fps, frames, duration, codec)


def _still_image(src: Path) -> str | None:
    """The still-image format `src` is (a photo given where a video belongs), else None. A still
    HEIC or AVIF is an ISO file like an MP4, which ffmpeg would open as a one-frame video."""
    with open(src, "rb") as file:
        found = still_format_of(file.read(16))
    return None if found == "GIF" else found  # a GIF is a video here, animated or not


def _no_video_stream(src: Path, log: str, stderr: bytes) -> SpecError:
    """Why a file that ffmpeg opened (or refused) has no video stream, in the user's words: a
    sound-only file, an empty one, or what ffmpeg said."""
    with open(src, "rb") as file:
        head = file.read(16)
    if re.search(r"Stream #0:\d+.*?: Audio:", log):
        return SpecError(f"{PARAM}: the file holds only sound, no pictures. Give a video with a video "
                         "track (MP4, MOV, WebM, AVI or GIF).", PARAM)
    if head[4:8] == b"ftyp" and "Input #0" not in log:  # an MP4 or MOV whose index is missing:
        return _damaged(None, None, "the index that an MP4 holds at its end is missing")  # written last
    if "Input #0" in log:
        return SpecError(f"{PARAM}: the file holds no video track (no frames at all). {_RETRY}.", PARAM)
    return _unreadable(stderr)


def _unreadable(stderr: bytes) -> SpecError:
    return SpecError(f"{PARAM}: not a readable video (allowed containers: MP4/MOV, MKV/WebM, AVI, GIF; a "
                     f"damaged or cut-short file is not readable either). {_RETRY}. ffmpeg said: "
                     f"{ffmpeg_said(stderr, 1)}", PARAM)


# What ffmpeg says of a file that ends before its index does (an upload cut off midway) or of a
# damaged packet or frame: each is a frame the render would miss.
_DAMAGE = re.compile(r"partial file|packet corrupt|corrupt input packet|file ended prematurely|"
                     r"decoding error|decode error rate", re.IGNORECASE)
_OVERSIZE = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count")
_STATS = re.compile(r"Input stream #0:\d+ \(video\): (\d+) packets read \([^)]*\);"
                    r"(?: (\d+) frames decoded; (\d+) decode errors;)?")


def _count_frames(src: Path, limits: VideoLimits, *, decode: bool) -> int:
    """The frames of the first video stream, up to the duration limit: its packets, counted by a
    stream copy to the null muxer (nothing decoded: fast), or with `decode` the frames decoded.
    SpecError when its end is missing or a packet or frame is damaged, since the render would stop
    there after the frames before it had used the GPU."""
    how = [*input_args(src, limits), "-map", FIRST_VIDEO] if decode else \
        [*input_args(src), "-map", FIRST_VIDEO, "-c", "copy"]
    # The log goes to a file, read a line at a time: a long damaged video logs a line per frame.
    with tempfile.TemporaryFile() as log:
        done = _probe_run(["-nostats", "-v", "verbose", *how, "-t", f"{limits.max_duration_s + 1:.3f}",
                           "-f", "null", "-"], limits, "reading the video", log)
        log.seek(0)
        damage, stats, errors = None, None, deque(maxlen=2)
        for raw in log:
            line = raw.decode("utf-8", "replace").strip()
            if oversize := _OVERSIZE.search(line):
                _check_bounds(0, int(oversize.group(1)), int(oversize.group(2)), limits)
            damage = damage or (_DAMAGE.search(line) and line)
            stats = _STATS.search(line) or stats
            if re.search(r"error|invalid", line, re.IGNORECASE):
                errors.append(raw)
    packets = int(stats.group(1)) if stats else None
    decoded = int(stats.group(2)) if decode and stats else packets
    failed = int(stats.group(3)) if decode and stats else 0
    if damage or failed:
        said = ffmpeg_said(damage.encode(), 1) if damage else f"{failed} frames would not decode"
        raise _damaged(packets, decoded, said)
    if done.returncode != 0 or packets is None:
        raise _unreadable(b"".join(errors))
    return decoded


# The mov demuxer's index as it logs it at trace level: each sample's stream, offset and size.
_SAMPLE = re.compile(rb"AVIndex stream (\d+), sample \d+, offset ([0-9a-f]+), dts -?\d+, size (\d+)")


def _indexed_frames(src: Path, stream: int, limits: VideoLimits) -> tuple[int, int]:
    """How many frames of an MP4's or MOV's video `stream` its index lists, and how many of them
    lie whole inside the file. A "faststart" MP4 keeps its index first, so a copy cut off midway
    still opens; cut between two frames, it shows no damage ffmpeg would report, only fewer frames."""
    size = src.stat().st_size
    listed = whole = 0
    with tempfile.TemporaryFile() as log:  # a line per frame: read a line at a time
        _probe_run(["-v", "trace", *input_args(src)], limits, "reading the video's index", log)
        log.seek(0)
        for line in log:
            if (sample := _SAMPLE.search(line)) and int(sample.group(1)) == stream:
                listed += 1
                whole += int(sample.group(2), 16) + int(sample.group(3)) <= size
    return listed, whole


def _gif_cut_short(src: Path) -> bool:
    """Whether a GIF's data ends inside a frame. A whole GIF ends with its trailer byte; one that
    does not is read through by Pillow, which tells a cut frame from bytes after the trailer."""
    with open(src, "rb") as file:
        file.seek(-1, os.SEEK_END)
        if file.read(1) == b";":
            return False
    try:
        with Image.open(src, formats=["GIF"]) as image:
            for frame in ImageSequence.Iterator(image):
                frame.load()
    except Exception:  # Pillow's GIF reader raises several types on a cut or damaged frame
        return True
    return False


def _damaged(listed: int | None, read: int | None, said: str) -> SpecError:
    where = ("" if read is None else f" after {read} frames" if read == listed else
             f" after {read} of the {listed} frames it lists")
    return SpecError(f"{PARAM}: the video is damaged or cut short: ffmpeg found damage{where} "
                     f"({said.rstrip('.')}). An upload cut off midway, or a copy made before the video was "
                     f"saved whole, looks like this: use the whole file, or {_RETRY[0].lower()}{_RETRY[1:]}.", PARAM)


def _probe_run(args: list[str], limits: VideoLimits, what: str,
               log: BinaryIO | None = None) -> subprocess.CompletedProcess:
    try:
        return run_ffmpeg(args, limits.timeout_s, what, log)
    except EngineError as err:  # the timeout: for the user, a file to export again
        raise SpecError(f"{PARAM}: {err} {_RETRY}, shorter or smaller.", PARAM) from None


def _check_bounds(duration: float, width: int, height: int, limits: VideoLimits) -> None:
    if duration > limits.max_duration_s:
        raise SpecError(f"{PARAM}: the video lasts {duration:.1f} s, over the limit of "
                        f"{limits.max_duration_s:.0f} s. Trim it to at most {limits.max_duration_s:.0f} s.", PARAM)
    if max(width, height) > limits.max_side:
        raise SpecError(f"{PARAM}: the video is {width}x{height}, over the limit of {limits.max_side} pixels "
                        f"per side. Scale it down to at most {limits.max_side}x{limits.max_side}.", PARAM)


def orientation_note(info: VideoInfo, width: int, height: int) -> str | None:
    """A note when a portrait video is rendered landscape or the reverse: its frames are stretched
    to the render's size, as in DD, which a phone video's user rarely wants."""
    def shape(w: int, h: int) -> str | None:
        return "portrait" if h > 1.2 * w else "landscape" if w > 1.2 * h else None
    video, render = shape(info.width, info.height), shape(width, height)
    if video is None or render is None or video == render:
        return None
    return (f"the video is {info.width}x{info.height} ({video}) and the frames are {width}x{height} "
            f"({render}): each video frame is stretched to that size, as in DD; give width {height} "
            f"and height {width} to keep the video's shape")


def check_selection(info: VideoInfo, every_nth: int, max_frames: int | None,
                    limits: VideoLimits = DEFAULT_LIMITS) -> int:
    """How many frames every-nth selection yields (capped by `max_frames`); SpecError over the limit."""
    if not isinstance(every_nth, int) or every_nth < 1:
        raise SpecError(f"extract_nth_frame must be a whole number >= 1, got {every_nth!r}. "
                        "Use 1 for every frame.", "extract_nth_frame")
    selected = math.ceil(info.frames / every_nth)
    if max_frames is not None:
        selected = min(selected, max_frames)
    if selected > limits.max_frames:
        need = math.ceil(info.frames / limits.max_frames)
        raise SpecError(f"{PARAM}: with extract_nth_frame={every_nth} the video's {info.frames} frames give "
                        f"{selected} frames, over the limit of {limits.max_frames}. Set extract_nth_frame to "
                        f"{need} or more, set max_frames to {limits.max_frames} or less, or trim the video.", PARAM)
    return selected


def iter_frames(path: str | os.PathLike, *, every_nth: int = 1, width: int, height: int,
                max_frames: int | None = None, limits: VideoLimits = DEFAULT_LIMITS,
                allowed_dir: str | os.PathLike | None = None) -> Iterator[np.ndarray]:
    """Frames 0, N, 2N, ... of the video (DD's `select=not(mod(n,N))`), stretched to width x height
    like DD's init images, as uint8 arrays [height, width, 3]. Probes and checks bounds first.

    Closing the iterator early stops ffmpeg."""
    for name, side in (("width", width), ("height", height)):
        if not isinstance(side, int) or not 8 <= side <= limits.max_side:
            raise SpecError(f"{name} must be a whole number from 8 to {limits.max_side}, got {side!r}.", name)
    info = probe_video(path, limits=limits, allowed_dir=allowed_dir)
    count = check_selection(info, every_nth, max_frames, limits)
    src = safe_input_path(path, allowed_dir=allowed_dir, limits=limits)
    if image := _still_image(src):
        raise SpecError(f"{PARAM}: the file is a {image} image, not a video. Give a video (MP4, MOV, "
                        "WebM, AVI or GIF), or start the animation from the image as its init_image.", PARAM)
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
            "-t", f"{limits.max_duration_s:g}", *input_args(src, limits), "-map", FIRST_VIDEO,
            "-vf", f"select=not(mod(n\\,{every_nth})),scale={width}:{height}:flags=lanczos",
            "-fps_mode", "passthrough", "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24",
            "pipe:1"]
    return read_raw_frames(args, width, height, count, limits.timeout_s)


def read_raw_frames(args: list[str], width: int, height: int, count: int, timeout: float) -> Iterator[np.ndarray]:
    """`count` RGB frames of width×height from the rawvideo that the command `args` writes to
    stdout; a wait of over `timeout` s for one frame kills it (EngineError). Fewer frames (a file
    whose index promises frames its damaged or cut-short end lacks) is a SpecError after them."""
    frame_bytes = width * height * 3
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg can never block on stderr
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        try:
            for got in range(count):
                # The clock runs only while waiting for ffmpeg, not while the caller works on a frame;
                # a watchdog, because a stuck ffmpeg would never return from read().
                fired = threading.Event()
                watchdog = threading.Timer(timeout, lambda: (fired.set(), proc.kill()))
                watchdog.start()
                buf = proc.stdout.read(frame_bytes)
                watchdog.cancel()
                if fired.is_set():
                    raise EngineError(f"ffmpeg took longer than {timeout:.0f} s for one frame; it was stopped.")
                if len(buf) < frame_bytes:
                    break
                yield np.frombuffer(buf, np.uint8).reshape(height, width, 3)
            else:
                got = count
            proc.stdout.close()
            if proc.wait(timeout=timeout) != 0:
                errors.seek(0)
                raise SpecError(f"{PARAM}: ffmpeg could not decode the video: {ffmpeg_said(errors.read())}. "
                                f"{_RETRY}.", PARAM)
            if got < count:
                raise SpecError(f"{PARAM}: the video ends after {got} of the {count} frames its index "
                                f"lists (its end is damaged or cut short). Set max_frames to {got}, or "
                                f"{_RETRY[0].lower()}{_RETRY[1:]}.", PARAM)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# ---- encoding -----------------------------------------------------------------------------------

def as_array(frame: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise EngineError(f"A video frame must be a PIL image or a uint8 array [H, W, 3]; got "
                          f"{array.dtype} {array.shape}.")
    return array


def _even(array: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row/column rather than pad black or rescale."""
    h, w = array.shape[:2]
    if h % 2 or w % 2:
        array = np.pad(array, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return array


def encode_mp4(frames: Iterable[Image.Image | np.ndarray], path: str | os.PathLike, *, fps: float = 12,
               crf: int = 17, preset: str = DEFAULT_PRESET, bitrate: int | None = None,
               timeout: float = 600.0) -> Path:
    """H.264 (libx264) yuv420p MP4, written atomically (temp file in the same folder, then rename).

    Constant quality (`crf`, DD's 17) unless `bitrate` (bits/s) is given. All frames must have the
    size of the first; odd sides get one repeated edge row/column. `+faststart` puts the index first
    so Discord can start playback before the whole file has arrived."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise EngineError(f"No frames to encode into {path.name}.")
    first = _even(as_array(first))
    h, w = first.shape[:2]
    fd, tmp = temp_beside(path, ".mp4")
    os.close(fd)
    rate = ["-crf", str(crf)] if not bitrate else ["-b:v", str(bitrate), "-maxrate", str(bitrate),
                                                   "-bufsize", str(bitrate * 2)]
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "pipe:0",
            "-c:v", "libx264", "-preset", preset, *rate, "-pix_fmt", "yuv420p", "-movflags", "+faststart",
            "-an", "-f", "mp4", f"file:{tmp}"]
    try:
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
            try:
                for i, frame in enumerate(itertools.chain([first], iterator)):
                    array = _even(as_array(frame))
                    if array.shape != first.shape:
                        raise EngineError(f"Frame {i} is {array.shape[1]}x{array.shape[0]}, but the video is "
                                          f"{w}x{h}: every frame must have the first frame's size.")
                    proc.stdin.write(np.ascontiguousarray(array).tobytes())
                proc.stdin.close()
                code = proc.wait(timeout=timeout)
            except BrokenPipeError:  # ffmpeg quit early; its message says why
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired as err:
                raise EngineError(f"ffmpeg took longer than {timeout:.0f} s encoding {path.name}.") from err
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if code != 0:
                errors.seek(0)
                raise EngineError(f"ffmpeg failed to encode {path.name}: {ffmpeg_said(errors.read())}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
