"""What an animation's output folder holds and whether a run may go on from it.

``animation.json`` (the spec and the settled base seed, written before any frame) and
``{batch}(0)_settings.txt`` (the same in DD's layout) say which animation the frames are; a rerun
resumes when it asks for the same frames — the MP4's own settings (`ASSEMBLY_ONLY`) and a frame
count under which the frames done come out the same aside — and refuses another animation's
folder. Without ``animation.json`` (a queued job's frames come back without it) frame 0's PNG
text says which animation and seed the frames are.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from engine.errors import EngineError, SpecError
from engine.media.files import read_png_text, save_json
from engine.spec.animation import MODE_KEYS, AnimationSpec, unwrap_run_file
from engine.spec.ddanimation import export_dd_animation

SETTINGS_FILE = "animation.json"
# Settings that change only how the finished frames become the MP4: a rerun that changes them
# resumes (and re-assembles) instead of calling the frames another animation's.
ASSEMBLY_ONLY = ("fps", "video_init_blend_mode")


def frame_file(out_dir: Path, n: int) -> Path:
    """Frame n of the animation in `out_dir` (``frames/NNNN.png``)."""
    return out_dir / "frames" / f"{n:04}.png"


def eye_file(out_dir: Path, n: int, eye: str) -> Path:
    """Frame n's VR view for `eye`, "l" or "r" (``vr/frame_NNNN_l.png``)."""
    return out_dir / "vr" / f"frame_{n:04}_{eye}.png"


def frames_done(out_dir: Path, limit: int | None = None) -> int:
    """How many frames, from frame 0 on without a gap, are in `out_dir` (at most `limit`)."""
    n = 0
    while (limit is None or n < limit) and frame_file(out_dir, n).exists():
        n += 1
    return n


def settle_seed(anim: AnimationSpec, out_dir: Path, resume: bool) -> int:
    """The base seed: the stored one when resuming the same animation (or this one lengthened, or
    assembled at another fps), else a new one; raises EngineError for another animation's folder."""
    settings = out_dir / SETTINGS_FILE
    wanted = json.loads(anim.to_json())
    if resume and settings.exists():
        try:
            stored = json.loads(settings.read_text(encoding="utf-8"))
            # Equal, or equal once the stored seed is written in (this file given back
            # with --settings, or the settled seed given with --seed), the MP4's settings aside.
            same = _frames_part(wanted) in (_frames_part(stored["animation"]),
                                            _frames_part(unwrap_run_file(stored)))
            seed = int(stored["base_seed"])
            before = AnimationSpec.from_dict(stored["animation"])
            extended = not same and _extends(before, anim, out_dir)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, SpecError):
            raise EngineError(f"{settings} is damaged; delete it (the frames there resume "
                              "only if they are this animation's), or choose another output "
                              "folder") from None
        if not (same or extended):
            raise EngineError(f"{out_dir} holds frames of a different animation; choose "
                              "another output folder, or replace them (disco animate --restart)")
        if extended:  # frames past the stored length are an older run's (a --restart's leftovers)
            _drop_frames_from(out_dir, before.max_frames)
        if stored["animation"] != wanted:  # a new fps or blend: the files say what is assembled
            _save_settings(anim, out_dir, wanted, seed)
        return seed
    found = _seed_on_disk(out_dir, wanted) if resume else None  # the same render seed, if any
    if anim.render.seed is not None:
        seed = anim.render.seed
    else:
        seed = found if found is not None else random.randint(0, 2**32 - 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_settings(anim, out_dir, wanted, seed)
    return seed


def _save_settings(anim: AnimationSpec, out_dir: Path, wanted: dict, seed: int) -> None:
    save_json(out_dir / SETTINGS_FILE, {"animation": wanted, "base_seed": seed})
    # The same settings in DD's layout, for DD users and `disco animate --settings`.
    save_json(out_dir / f"{anim.render.batch_name}(0)_settings.txt",
              export_dd_animation(anim, seed=seed))


def _extends(old: AnimationSpec, new: AnimationSpec, out_dir: Path) -> bool:
    """Whether `new` is `old` with another frame count under which the frames on disk come out
    the same (motion, prompts, steps and turbo schedule), so a longer or shorter run resumes."""
    if {**_frames_part(json.loads(old.to_json())), "max_frames": 0} != {
            **_frames_part(json.loads(new.to_json())), "max_frames": 0}:
        return False
    done = frames_done(out_dir, min(old.max_frames, new.max_frames))
    motion = MODE_KEYS[new.animation_mode]
    return (old.diffused_frames()[:done] == new.diffused_frames()[:done]
            and all(old.series(name)[:done] == new.series(name)[:done] for name in motion)
            and all(old.prompts_at(n) == new.prompts_at(n) for n in range(done))
            # beyond prompts and seed + n, every later frame has frame 1's settings
            and all(old.frame_render_spec(n) == new.frame_render_spec(n) for n in range(min(done, 2))))


def _seed_on_disk(out_dir: Path, wanted: dict) -> int | None:
    """The base seed frame 0 on disk was rendered with, when there is one and it is of `wanted`
    (a queued job's frames come back without animation.json; a user may delete that file).
    Frames of another animation are an EngineError: they must never be taken as this one's."""
    first = frame_file(out_dir, 0)
    if not first.exists():
        return None
    try:
        text = read_png_text(first)
        same = _frames_part(json.loads(text["disco_animation"])) == _frames_part(wanted)
        seed = int(text["disco_base_seed"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        same = False
    if not same:
        raise EngineError(f"{out_dir} holds frames of a different animation; choose another output "
                          "folder, or replace them (disco animate --restart)")
    return seed


def _drop_frames_from(out_dir: Path, first: int) -> None:
    """Delete frame `first` and every later one, with their VR eye views."""
    n = first
    while (frame := frame_file(out_dir, n)).exists():
        for eye in "lr":
            eye_file(out_dir, n, eye).unlink(missing_ok=True)
        frame.unlink()
        n += 1


def _frames_part(animation: dict) -> dict:
    """An animation's settings less those that only assemble the MP4 (`ASSEMBLY_ONLY`)."""
    return {key: value for key, value in animation.items() if key not in ASSEMBLY_ONLY}
