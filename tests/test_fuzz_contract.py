"""One fuzz contract for every public input path: whatever a user sends, the outcome is either a
valid spec within the server's limits or that layer's refusal (`SpecError`, of which the
commands layer's `CommandError` is one), within one second of CPU and bounded memory; never another
exception. Inputs mix the syntax each parser knows (flags, weights, keyframes, JSON, escapes,
huge numbers, invisible characters) with arbitrary text and bytes.

Paths: prompt syntax, the settings option, settings files, keyframes, frame prompts, study axes,
DD import, the bot's option builders (/disco, /animate), attachments (generated images, videos
and settings files through the bot's own download checks), and the CLI's arguments and files.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import time
import tracemalloc
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from PIL import Image

from bot.attachments import read_settings_file, save_image, save_video
from commands.animate_options import AnimateOptions, build_animation
from commands.job_options import DiscoOptions, JobLimits, build_job, cuts_per_step
from commands.prompt_syntax import parse_prompt_text
from disco.cli import main
from engine.errors import SpecError
from engine.spec.ddsettings import import_dd_settings
from engine.spec.frame_prompts import parse_frame_prompts
from engine.spec.keyframes import parse_keyframes
from engine.spec.render import RenderSpec
from engine.spec.study import build_study
from tests.support.storage import in_db

MAX_SECONDS = 1.0  # of CPU (see contract)
MAX_WALL_SECONDS = 10.0
MAX_PYTHON_BYTES = 64 * 2**20
LIMITS = JobLimits(max_steps=300, max_pixels=768 * 768, max_cuts=64, max_frames=120)
CONTRACT = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Pieces of every syntax the parsers read, plus what breaks naive parsers.
PIECES = [
    "--", "--no", "--steps", "--ar", "--seed", "--size", "--model", "-", ":", "::", "|", "||",
    "=", ";", ",", "\"", "'", "\\", "\\u0065", "[", "]", "{", "}", "(", ")", "*", "%", "0:", "10:",
    "1e309", "-1", "nan", "inf", "0" * 60, "9" * 5000, "1e5", "5e3", " ", "\n", "\t", "\u200b",
    "\u0301", "ｆ", "\x00", "none", "null", "true", "false", "[12]*400+[4]*600", "text_prompts",
    "steps", "width_height", "clip_guidance_scale", "cut_overview", "zoom", "max_frames",
    "image_prompts", "init_image", "animation_mode", "a lighthouse", "x" * 70,
]
noisy = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=25).map("".join),
    st.text(max_size=400),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
              st.floats(allow_nan=True, allow_infinity=True), noisy),
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)),
                                            inner, max_size=5)),
    max_leaves=20,
)
settings_files = st.one_of(
    st.dictionaries(st.sampled_from(PIECES), json_values, max_size=8).map(lambda d: json.dumps(d).encode()),
    noisy.map(str.encode),
    st.binary(max_size=300),
)


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (the video probe's ffmpeg)."""
    return sum(os.times()[:4])


def contract(call, *refusals: type[BaseException]):
    """Run `call`: it returns, or raises one of `refusals` (default SpecError), in time and
    memory. Returns the result (None when refused). The second is CPU time, the work an input
    costs: on a shared machine the wall clock also counts the neighbours (1.05 s for an input
    whose work is 0.3 s); the wall clock only guards against waiting."""
    refusals = refusals or (SpecError,)
    tracemalloc.start()
    started, started_cpu = time.perf_counter(), cpu_seconds()
    try:
        return call()
    except refusals:
        return None
    finally:
        seconds, wall = cpu_seconds() - started_cpu, time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert seconds < MAX_SECONDS, f"took {seconds:.2f} s of CPU"
        assert wall < MAX_WALL_SECONDS, f"took {wall:.2f} s"
        assert peak < MAX_PYTHON_BYTES, f"used {peak / 2**20:.0f} MiB"


def within_limits(spec: RenderSpec) -> None:
    assert spec.steps <= LIMITS.max_steps and spec.width * spec.height <= LIMITS.max_pixels
    assert cuts_per_step(spec) <= LIMITS.max_cuts and spec.n_batches <= LIMITS.max_images


@CONTRACT
@given(noisy)
@example("a --" + "x" * 65)
@example("a cat --no " + "--" + "y" * 70)
@example("a --steps " + "0" * 5000 + "5")
@example("a:100 | b:100 | c:100 --no d")
def test_prompt_syntax(text):
    contract(lambda: parse_prompt_text(text))


@CONTRACT
@given(noisy, st.one_of(st.none(), noisy))
@example("a cat", "image_prompts=none")
@example("a cat", "cut_overview=[12]*" + "0" * 5000 + "1")
@example("a cat", "text_prompts=" + "[" * 3000)
def test_disco_options_and_the_settings_option(prompt, settings_text):
    parsed = contract(lambda: build_job(DiscoOptions(prompt=prompt, settings=settings_text), limits=LIMITS))
    if parsed is not None:
        within_limits(parsed.spec)


@CONTRACT
@given(settings_files)
@example(b'{"steps": ' + b"9" * 5000 + b"}")
@example(b'{"text_prompts": {"0": ["a cat"]}, "width_height": [' + b"1" * 5000 + b", 64]}")
def test_settings_files(content):
    parsed = contract(lambda: build_job(DiscoOptions(prompt="a cat", settings_file=content), limits=LIMITS))
    if parsed is not None:
        within_limits(parsed.spec)


@CONTRACT
@given(st.one_of(noisy, json_values))
def test_keyframes(value):
    contract(lambda: parse_keyframes(value, param="zoom"))


@CONTRACT
@given(st.one_of(noisy, json_values))
def test_frame_prompts(value):
    contract(lambda: parse_frame_prompts(value, max_frames=100))


@CONTRACT
@given(noisy, st.one_of(st.none(), noisy))
def test_study_axes(x, y):
    base = RenderSpec(text_prompts=[{"text": "a cat", "weight": 1}], seed=1)
    contract(lambda: build_study(base, x, y, max_cells=36))


@CONTRACT
@given(st.one_of(settings_files, st.dictionaries(st.sampled_from(PIECES), json_values, max_size=8)))
def test_dd_import(source):
    contract(lambda: import_dd_settings(source))


@CONTRACT
@given(st.sampled_from([None, "2D", "3D", "Video Input", "4D", ""]), st.one_of(st.none(), st.integers(-5, 10**6)),
       st.dictionaries(st.sampled_from(["zoom", "angle", "translation_x", "rotation_3d_z", "fov"]), noisy, max_size=3),
       st.one_of(st.none(), noisy), st.dictionaries(st.sampled_from(PIECES), json_values, max_size=5))
@example("2D", None, {}, None, {"max_frames": "5000"})
@example("2D", None, {}, None, {"max_frames": 5e3})
def test_animate_options(mode, frames, motion, settings_text, values):
    still = build_job(DiscoOptions(prompt="a cat", n=1), limits=LIMITS)
    options = AnimateOptions(mode=mode, frames=frames, motion=motion, settings=settings_text, values=values)
    animation = contract(lambda: build_animation(still, options, limits=LIMITS))
    if animation is not None:
        assert animation.spec.max_frames <= LIMITS.max_frames
        within_limits(animation.spec.render)


# ---- attachments, through the bot's own download checks -------------------------------------

@dataclass
class Upload:
    """What the bot reads of a discord.Attachment."""
    filename: str
    content_type: str | None
    data: bytes
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    async def read(self) -> bytes:
        return self.data


def _image(fmt: str, width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(buffer, fmt)
    return buffer.getvalue()


images = st.builds(
    lambda fmt, w, h, cut, name, kind: (Upload(name, kind, _image(fmt, w, h)[:cut] if cut else _image(fmt, w, h), w, h)),
    st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"]), st.integers(1, 300), st.integers(1, 300),
    st.one_of(st.none(), st.integers(0, 200)), st.sampled_from(["a.png", "b.jpg", "c.webp", "d", "e.eps"]),
    st.sampled_from(["image/png", "image/jpeg", "image/webp", "image/gif", None, "text/plain"]))
garbage = st.builds(lambda data, w, h: Upload("x.png", "image/png", data, w, h), st.binary(max_size=2000),
                    st.one_of(st.none(), st.integers(-5, 10**6)), st.one_of(st.none(), st.integers(-5, 10**6)))


@pytest.fixture(scope="module")
def warm_image_readers(tmp_path_factory):
    """Every accepted format read and stored once first: the contract's second bounds the work
    on an input, not Pillow loading its plugins or the first database's set-up."""
    from engine.media.stills import read_still

    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        read_still(_image(fmt, 8, 8), 10_000)
    in_db(tmp_path_factory.mktemp("warm"), lambda db: save_image(db, Upload("w.bmp", None, _image("BMP", 8, 8)),
                                                                  "init_image"))


@CONTRACT
@given(st.one_of(images, garbage))
def test_image_attachments(warm_image_readers, tmp_path, upload):
    async def saved(db):
        ref = await save_image(db, upload, "init_image")
        return await db.blobs.get(ref)
    data = contract(lambda: in_db(tmp_path, saved))
    if data is not None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()


@CONTRACT
@given(st.one_of(settings_files.map(lambda b: Upload("s.txt", "text/plain", b)),
                 st.integers(0, 10**9).map(lambda n: Upload("big.txt", "text/plain", b"{}" * 3, n, n))))
def test_settings_file_attachments(upload):
    content = contract(lambda: asyncio.run(read_settings_file(upload)))
    if content is not None:
        contract(lambda: build_job(DiscoOptions(prompt="a cat", settings_file=content), limits=LIMITS))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    """A real 8-frame MP4 to cut and corrupt."""
    from engine.media.video import encode_mp4

    frames = [Image.new("RGB", (32, 32), (30 * k, 0, 0)) for k in range(8)]
    return encode_mp4(frames, tmp_path_factory.mktemp("clip") / "clip.mp4", fps=8).read_bytes()


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.integers(0, 4000), st.binary(max_size=50), st.sampled_from(["v.mp4", "v.gif", "v.webm"]))
def test_video_attachments(tmp_path, clip, cut, noise, name):
    data = clip[:cut] + noise if cut < len(clip) else clip
    info = contract(lambda: in_db(tmp_path, lambda db: save_video(db, Upload(name, None, data), 8 * 2**20)))
    if info is not None:
        assert info[1].frames >= 1


# ---- the command line ----------------------------------------------------------------------

@CONTRACT
@given(noisy, st.lists(noisy, max_size=3), st.one_of(st.none(), settings_files))
def test_cli_arguments_and_files(tmp_path, prompt, set_values, file_content):
    argv = ["jobs", "submit", prompt, "--guild", "1", "--channel", "2", "--user", "3",
            "--data-dir", str(tmp_path / "data")]
    for value in set_values:
        argv += ["--set", value]
    if file_content is not None:
        (tmp_path / "settings.json").write_bytes(file_content)
        argv += ["--settings", str(tmp_path / "settings.json")]
    err = io.StringIO()

    def run() -> int:
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            try:
                return main(argv)
            except SystemExit as exc:  # argparse's usage error
                return int(exc.code or 0)
    assert contract(run, ()) in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue() and "unexpected" not in err.getvalue(), err.getvalue()
