"""engine.media.video on tiny generated clips: probe, every-nth extraction, bounds, MP4 encoding, fitting
under an upload limit, animated previews and VR composition."""
from __future__ import annotations

import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from engine.errors import EngineError, SpecError
from engine.media.fit import fit_to_size
from engine.media.previews import animated_preview, side_by_side
from engine.media.video import (
    VideoLimits,
    encode_mp4,
    iter_frames,
    orientation_note,
    probe_video,
)

SIDE = 64


def square_frame(i: int, width: int = SIDE, height: int = SIDE) -> np.ndarray:
    """Black frame with a white 8x10 square whose left edge sits at x = 2*i."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[10:20, 2 * i:2 * i + 8] = 255
    return frame


def square_x(frame: np.ndarray) -> int:
    return int(np.argmax(frame[15, :, 0] > 128))


def read_back(path) -> tuple[dict, list[np.ndarray]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    return meta, frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    encode_mp4((square_frame(i) for i in range(24)), path, fps=12)
    return path


def test_encode_mp4_reads_back_with_frames_fps_and_size(clip):
    meta, frames = read_back(clip)
    assert meta["fps"] == 12 and meta["size"] == (SIDE, SIDE) and meta["codec"].startswith("h264")
    assert len(frames) == 24
    assert [square_x(f) for f in frames[:4]] == [0, 2, 4, 6]
    assert not [p for p in clip.parent.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_encode_mp4_pads_odd_sides_and_takes_pil_images(tmp_path):
    path = encode_mp4([Image.fromarray(square_frame(i, 33, 21)) for i in range(3)], tmp_path / "odd.mp4", fps=5)
    meta, frames = read_back(path)
    assert meta["size"] == (34, 22) and len(frames) == 3 and meta["fps"] == 5


def test_encode_mp4_refuses_mixed_sizes_and_no_frames(tmp_path):
    with pytest.raises(EngineError, match="first frame's size"):
        encode_mp4([square_frame(0), square_frame(0, 32, 32)], tmp_path / "mixed.mp4")
    with pytest.raises(EngineError, match="No frames"):
        encode_mp4([], tmp_path / "none.mp4")
    assert not list(tmp_path.iterdir())


def test_probe_video(clip):
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.frames, info.codec) == (SIDE, SIDE, 12.0, 24, "h264")
    assert info.duration == pytest.approx(2.0, abs=0.1)


def test_every_second_frame_in_order_and_resized(clip):
    frames = list(iter_frames(clip, every_nth=2, width=SIDE, height=SIDE))
    assert len(frames) == 12
    assert [square_x(f) for f in frames] == [4 * k for k in range(12)]  # input frames 0, 2, 4, ...
    small = list(iter_frames(clip, every_nth=3, width=32, height=16, max_frames=5))
    assert len(small) == 5 and small[0].shape == (16, 32, 3)
    sixth = list(iter_frames(clip, every_nth=6, width=SIDE, height=SIDE))
    assert len(sixth) == 4 and square_x(sixth[1]) == 12


def test_closing_the_iterator_early_stops_ffmpeg(clip):
    frames = iter_frames(clip, width=SIDE, height=SIDE)
    assert next(frames).shape == (SIDE, SIDE, 3)
    frames.close()


def test_bounds_name_the_parameter_the_limit_and_the_fix(tmp_path, clip):
    slow = encode_mp4((square_frame(i) for i in range(10)), tmp_path / "slow.mp4", fps=1)
    with pytest.raises(SpecError, match=r"lasts 10\.0 s, over the limit of 5 s\. Trim") as err:
        probe_video(slow, limits=VideoLimits(max_duration_s=5))
    assert err.value.param == "video_init_path"
    with pytest.raises(SpecError, match=r"64x64, over the limit of 48 pixels.*Scale it down"):
        probe_video(clip, limits=VideoLimits(max_side=48))
    with pytest.raises(SpecError, match=r"KiB, over the limit of 1 KiB\. Trim or compress"):
        probe_video(clip, limits=VideoLimits(max_bytes=1000))
    with pytest.raises(SpecError, match=r"24 frames give 12 frames, over the limit of 10\. Set extract_nth_frame to 3"):
        list(iter_frames(clip, every_nth=2, width=SIDE, height=SIDE, limits=VideoLimits(max_frames=10)))
    assert len(list(iter_frames(clip, every_nth=2, width=8, height=8, max_frames=10,
                                limits=VideoLimits(max_frames=10)))) == 10  # capped by max_frames: allowed
    with pytest.raises(SpecError, match="extract_nth_frame must be a whole number"):
        list(iter_frames(clip, every_nth=0, width=SIDE, height=SIDE))


@pytest.mark.parametrize("name", ["https://example.com/a.mp4", "concat:a.mp4|b.mp4", "pipe:0", "file:/etc/passwd"])
def test_urls_and_protocols_are_refused(name):
    with pytest.raises(SpecError, match="not a URL or ffmpeg protocol") as err:
        probe_video(name)
    assert err.value.param == "video_init_path"


def test_only_regular_files_inside_the_allowed_folder(tmp_path, clip):
    with pytest.raises(SpecError, match="regular file"):
        probe_video(tmp_path)
    with pytest.raises(SpecError, match="regular file"):
        probe_video("/dev/zero")
    with pytest.raises(SpecError, match="Check the file exists"):
        probe_video(tmp_path / "missing.mp4")
    inside = tmp_path / "uploads"
    inside.mkdir()
    os.symlink(clip, inside / "link.mp4")
    with pytest.raises(SpecError, match="must be a file inside"):
        probe_video(inside / "link.mp4", allowed_dir=inside)
    assert probe_video(clip, allowed_dir=clip.parent).frames == 24


def test_not_a_video_and_forbidden_containers(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SpecError, match="not a readable video"):
        probe_video(junk)
    playlist = tmp_path / "list.m3u8"  # an HLS playlist would open other files: its demuxer is not allowed
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nclip.mp4\n#EXT-X-ENDLIST\n")
    with pytest.raises(SpecError, match="not a readable video"):
        probe_video(playlist)


def test_files_that_are_not_videos_say_what_they_are(tmp_path):
    """A photo renamed .mp4, a sound-only file and an MP4 with no track were all "not a readable
    video" with ffmpeg's header noise ("At least one output file must be specified") as the reason;
    a song with its cover art passed as a one-frame video of the cover."""
    import subprocess

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    photo = tmp_path / "photo.mp4"
    Image.new("RGB", (32, 32), "red").save(photo, format="JPEG")
    sound = tmp_path / "sound.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.2", str(sound)], check=True)
    cover = tmp_path / "cover.jpg"
    Image.new("RGB", (32, 32), "blue").save(cover)
    song = tmp_path / "song.m4a"  # a song with its cover: the cover was read as a one-frame video
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.2", "-i", str(cover), "-map", "0",
                    "-map", "1", "-c:v", "copy", "-disposition:v", "attached_pic", str(song)], check=True)
    empty = tmp_path / "empty.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "0",
                    str(empty)], check=True)
    from pillow_heif import register_heif_opener

    register_heif_opener()
    stills = []  # HEIC and AVIF photos are ISO files like an MP4: ffmpeg read them as one-frame videos
    for name, fmt in (("HEIC", "HEIF"), ("AVIF", "AVIF"), ("BMP", "BMP"), ("TIFF", "TIFF")):
        Image.new("RGB", (32, 32), "red").save(tmp_path / f"photo.{name.lower()}", format=fmt)
        stills.append((tmp_path / f"photo.{name.lower()}", f"is a {name} image, not a video"))
    for path, expected in ((photo, "is a JPEG image, not a video"), (sound, "holds only sound"),
                           (song, "holds only sound"), (empty, "holds no video track"), *stills):
        with pytest.raises(SpecError, match=expected) as caught:
            probe_video(path)
        assert "output file" not in str(caught.value) and "Give a video" in str(caught.value) or \
            "Export it again" in str(caught.value)


def cut_short(path, tmp_path, keep: float):
    """The first `keep` of `path`'s bytes, as an upload cut off midway leaves it."""
    data = path.read_bytes()
    cut = tmp_path / f"cut_{keep}_{path.name}"
    cut.write_bytes(data[:int(len(data) * keep)])
    return cut


def test_a_video_cut_short_is_refused_by_the_probe_before_any_frame_is_read(tmp_path, clip):
    """A cut-short file was probed as fine (its packets counted up to where its data ends) and
    refused by the render only when it reached the missing frames, after the frames before had
    used the GPU. MP4 with its index first (as we write it) or last (as a phone writes it), WebM,
    GIF."""
    import subprocess

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    phone = tmp_path / "phone.mp4"  # no +faststart: the index after the frames
    subprocess.run([ffmpeg, "-v", "error", "-i", str(clip), "-c", "copy", str(phone)], check=True)
    webm = tmp_path / "clip.webm"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(clip), "-c:v", "libvpx", str(webm)], check=True)
    gif = tmp_path / "clip.gif"  # ffmpeg drops a cut GIF's last frame without a word
    frames = [Image.fromarray(square_frame(i)) for i in range(6)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    for path, keep, said in ((clip, 0.9, "after [0-9]+ of the 24 frames it lists"), (phone, 0.5, "index that an MP4 holds"),
                             (webm, 0.6, "after [0-9]+ frames"), (gif, 0.8, "GIF's last frame is cut short")):
        for reading in (lambda p: probe_video(p), lambda p: next(iter_frames(p, width=8, height=8))):
            with pytest.raises(SpecError, match=f"damaged or cut short: ffmpeg found damage.*{said}.*"
                               "use the whole file, or export it again") as err:
                reading(cut_short(path, tmp_path, keep))
            assert err.value.param == "video_init_path"
    padded = tmp_path / "padded.gif"  # bytes after a whole GIF's trailer: the GIF is whole
    padded.write_bytes(gif.read_bytes() + bytes(64))
    assert probe_video(padded).frames == 6


def _frame_ends(mp4: bytes) -> list[int]:
    """Where each frame of a one-track, one-chunk MP4 ends, from its sample sizes (stsz) and its
    chunk offset (stco): read from the boxes here, independently of ffmpeg."""
    import struct

    def box(data: bytes, path: list[str], start: int, end: int) -> tuple[int, int]:
        while start < end:
            size, kind = struct.unpack(">I4s", data[start:start + 8])
            if kind.decode() == path[0]:
                return (start, size) if len(path) == 1 else box(data, path[1:], start + 8, start + size)
            start += size
        raise AssertionError(f"no {path[0]} box")
    stbl = ["moov", "trak", "mdia", "minf", "stbl"]
    at, _ = box(mp4, stbl + ["stsz"], 0, len(mp4))
    count = struct.unpack(">I", mp4[at + 16:at + 20])[0]
    sizes = struct.unpack(f">{count}I", mp4[at + 20:at + 20 + 4 * count])
    at, _ = box(mp4, stbl + ["stco"], 0, len(mp4))
    assert struct.unpack(">I", mp4[at + 12:at + 16])[0] == 1  # one chunk: the frames follow each other
    first = struct.unpack(">I", mp4[at + 16:at + 20])[0]
    return [first + sum(sizes[:i + 1]) for i in range(count)]


def test_an_mp4_cut_exactly_between_two_frames_is_refused_by_its_index(tmp_path, clip):
    """With its index first (faststart, as we and many apps write it), an MP4 cut off between two
    frames opens, and ffmpeg reads its first frames without a word of damage: only the index says
    frames are missing."""
    data = clip.read_bytes()
    ends = _frame_ends(data)
    assert len(ends) == 24 and ends[-1] == len(data)  # the frames are the file's last bytes
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:ends[15]])
    for decode in (False, True):
        with pytest.raises(SpecError, match=r"cut short: ffmpeg found damage after 16 of the 24 frames it "
                           r"lists \(the file ends before the last frames its index lists\)"):
            probe_video(cut, decode=decode)
    assert probe_video(clip).frames == 24


def test_a_zeroed_end_is_found_by_decoding_every_frame(tmp_path, clip):
    """Every packet is there but its data is zeros (a copy made before the file was written
    whole): only a decode finds it, which the probe of a user's file does (`decode=True`)."""
    data = clip.read_bytes()
    zeroed = tmp_path / "zeroed.mp4"
    zeroed.write_bytes(data[:len(data) * 8 // 10] + bytes(len(data) - len(data) * 8 // 10))
    assert probe_video(zeroed).frames == 24  # the packets alone look whole
    with pytest.raises(SpecError, match=r"damaged or cut short: ffmpeg found damage after [0-9]+ of the 24 "
                       r"frames it lists \(Decoding error"):
        probe_video(zeroed, decode=True)
    assert probe_video(clip, decode=True).frames == 24


def part_of(ffmpeg: str, folder, side: int, count: int, suffix: str = ".h264"):
    """`count` frames of side x side as H.264: a raw stream (its size in every keyframe), or MP4."""
    import subprocess

    part = folder / f"{side}{suffix}"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", f"color=size={side}x{side}:rate=12",
                    "-frames:v", str(count), "-c:v", "libx264", "-preset", "ultrafast", str(part)], check=True)
    return part


def test_a_frame_larger_than_the_header_said_is_not_decoded(tmp_path):
    """An H.264 stream may change size midway; the probe checked only the header's 64x64, and the
    decode went on to a 2048x2048 frame (a crafted one could ask ffmpeg for gigabytes)."""
    import subprocess

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    (tmp_path / "both.h264").write_bytes(part_of(ffmpeg, tmp_path, 64, 24).read_bytes()
                                         + part_of(ffmpeg, tmp_path, 2048, 1).read_bytes())
    grows = tmp_path / "grows.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-fflags", "+genpts", "-r", "12", "-i", str(tmp_path / "both.h264"),
                    "-c", "copy", str(grows)], check=True)
    assert probe_video(grows).width == 64  # the header
    with pytest.raises(SpecError, match=r"2048x2048, over the limit of 1920 pixels per side"):
        probe_video(grows, decode=True)
    assert probe_video(part_of(ffmpeg, tmp_path, 1920, 1, ".mp4"), decode=True).width == 1920  # the limit


def test_frames_missing_at_decoding_are_refused_after_the_ones_read():
    """The last net, for a file that changes between the probe and the render: fewer frames than
    the count are a refusal that names the count and the fix, not a shorter animation."""
    from engine.media.video import read_raw_frames

    two = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=8x8:rate=4",
           "-frames:v", "2", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    frames = read_raw_frames(two, 8, 8, 3, timeout=30)
    assert next(frames).shape == (8, 8, 3) and next(frames).shape == (8, 8, 3)
    with pytest.raises(SpecError, match="ends after 2 of the 3 frames .* Set max_frames to 2"):
        next(frames)


def test_a_phone_video_turned_upright_by_its_rotation_is_portrait(tmp_path, clip):
    """A phone stores a portrait video as landscape frames plus a rotation; the probe reported
    the stored size, so nothing could tell the user their portrait video is being stretched
    into landscape frames."""
    import subprocess

    wide = tmp_path / "wide.mp4"
    encode_mp4((square_frame(i, width=96, height=64) for i in range(4)), wide, fps=12)
    phone = tmp_path / "phone.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(wide),
                    "-c", "copy", str(phone)], check=True)
    info = probe_video(phone)
    assert (info.width, info.height) == (64, 96)
    upright = next(iter_frames(phone, width=64, height=96))  # what ffmpeg decodes: turned upright
    assert np.array_equal(upright, np.rot90(next(iter_frames(wide, width=96, height=64))))
    note = orientation_note(info, 1280, 768)
    assert "64x96 (portrait)" in note and "1280x768 (landscape)" in note and "width 768 and height 1280" in note
    assert orientation_note(info, 768, 1280) is None and orientation_note(probe_video(wide), 1280, 768) is None


def test_fit_to_size_brings_noise_under_the_limit(tmp_path):
    rng = np.random.default_rng(0)
    big = encode_mp4((rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8) for _ in range(24)),
                     tmp_path / "noise.mp4", fps=12)
    limit = 25_000
    assert big.stat().st_size > 2 * limit
    result = fit_to_size(big, tmp_path / "fit.mp4", max_bytes=limit)
    assert result.size == result.path.stat().st_size <= limit and result.changes
    meta, frames = read_back(result.path)
    assert len(frames) == 24 and meta["fps"] == 12
    same = fit_to_size(result.path, tmp_path / "copy.mp4", max_bytes=limit)  # already fits: copied as is
    assert same.changes == () and same.path.read_bytes() == result.path.read_bytes()


def test_fit_to_size_scales_down_then_gives_up(tmp_path):
    rng = np.random.default_rng(1)
    big = encode_mp4((rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(24)),
                     tmp_path / "noise.mp4", fps=12)
    # ~2.8 kbit/s over 2 s is far under 0.04 bit per pixel at 128x128: the picture shrinks first
    result = fit_to_size(big, tmp_path / "small.mp4", max_bytes=2_500, min_side=16)
    assert result.path.stat().st_size <= 2_500 and 16 <= result.width < 128 and result.width == result.height
    assert len(read_back(result.path)[1]) == 24
    assert any("scaled from 128x128" in change for change in result.changes)
    with pytest.raises(EngineError, match="cannot be made to fit"):
        fit_to_size(big, tmp_path / "never.mp4", max_bytes=1_500, min_side=16)  # no room for the MP4 index
    assert not (tmp_path / "never.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_fit_to_size_retry_loop_against_an_encoder_that_always_overshoots(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    big = encode_mp4((rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8) for _ in range(24)),
                     tmp_path / "in" / "noise.mp4", fps=12)
    calls = []

    def overshoot(src, dst, *, bitrate, width, height, fps, timeout):
        calls.append((bitrate, width, height))
        dst.write_bytes(b"x" * 40_001)
        return 40_001

    monkeypatch.setattr("engine.media.fit._reencode", overshoot)
    with pytest.raises(EngineError, match="cannot be made to fit 39 KiB at 16 pixels per side"):
        fit_to_size(big, tmp_path / "out" / "out.mp4", max_bytes=40_000, min_side=16)
    assert [c[1:] for c in calls] == [(64, 64)] * 3 + [(48, 48)] * 2 + [(36, 36)] * 2 + [(26, 26)] * 2 + [(18, 18)] * 2
    assert calls[0][0] > calls[1][0] > calls[2][0]  # each miss lowers the bitrate
    assert not list((tmp_path / "out").iterdir())  # neither the output nor a temp file


def test_animated_preview_gif_and_webp(tmp_path):
    frames = [square_frame(i, 128, 96) for i in range(6)]
    gif = animated_preview(frames, tmp_path / "p.gif", max_side=64, fps=12)
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 6 and image.size == (64, 48)
        assert image.info["duration"] == 80 and image.info["loop"] == 0
    webp = animated_preview(frames, tmp_path / "p.webp", max_side=64)
    with Image.open(webp) as image:
        assert image.format == "WEBP" and image.n_frames == 6 and image.size == (64, 48)


def test_vr_composition():
    left = [np.full((4, 6, 3), 10, np.uint8), np.full((4, 6, 3), 20, np.uint8)]
    right = [Image.new("RGB", (6, 4), (200, 0, 0))] * 2
    pairs = list(side_by_side(left, right))
    assert len(pairs) == 2 and pairs[0].size == (12, 4)
    assert np.asarray(pairs[1])[0, 0].tolist() == [20, 20, 20] and np.asarray(pairs[1])[0, 6].tolist() == [200, 0, 0]
    with pytest.raises(EngineError, match="same count"):
        list(side_by_side(left, right[:1]))
    with pytest.raises(EngineError, match="same size"):
        list(side_by_side(left, [Image.new("RGB", (6, 5))] * 2))


def test_a_stuck_ffmpeg_is_stopped_by_the_watchdog():
    from engine.media.video import read_raw_frames
    frames = read_raw_frames(["sleep", "30"], 8, 8, 3, timeout=0.3)  # stands in for an ffmpeg that never writes
    with pytest.raises(EngineError, match="longer than 0 s for one frame"):
        next(frames)


@pytest.mark.parametrize("side", [1, 8])
def test_tiny_videos_are_readable(tmp_path, side):
    frames = [Image.new("RGB", (side, side), (40 * i, 0, 0)) for i in range(5)]
    frames[0].save(tmp_path / "tiny.gif", save_all=True, append_images=frames[1:], duration=100)
    info = probe_video(tmp_path / "tiny.gif")
    assert (info.width, info.height, info.frames, info.fps) == (side, side, 5, 10.0)


@pytest.mark.parametrize("fps", [1000, 2000])
def test_a_thousand_frames_per_second_and_more_is_read_as_such(tmp_path, fps):
    fast = encode_mp4((square_frame(i) for i in range(24)), tmp_path / "fast.mp4", fps=fps)  # ffmpeg prints "1k fps"
    info = probe_video(fast)
    assert (info.fps, info.frames) == (fps, 24)


def test_the_header_s_duration_is_checked_before_any_packet_is_read(tmp_path, monkeypatch):
    import engine.media.video as video
    slow = encode_mp4((square_frame(i) for i in range(10)), tmp_path / "slow.mp4", fps=1)
    runs, real_run = [], video.run_ffmpeg
    monkeypatch.setattr(video, "run_ffmpeg", lambda args, *rest: runs.append(args) or real_run(args, *rest))
    with pytest.raises(SpecError, match=r"lasts 10\.0 s, over the limit of 5 s"):
        probe_video(slow, limits=VideoLimits(max_duration_s=5))
    assert runs and not any("null" in args for args in runs)  # no packet-counting pass ran


def test_a_probe_that_runs_out_of_time_is_a_refusal_with_the_fix(clip, monkeypatch):
    import subprocess

    import engine.media.video as video

    def too_slow(args, **kwargs):
        raise subprocess.TimeoutExpired(args, kwargs["timeout"])
    monkeypatch.setattr(video.subprocess, "run", too_slow)
    with pytest.raises(SpecError, match=r"longer than 120 s.*Export it again as MP4") as err:
        probe_video(clip)
    assert err.value.param == "video_init_path"
