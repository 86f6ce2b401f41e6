"""The animation render loop: an `AnimationSpec` in, numbered frames, an MP4 and a preview out.

    renderer = AnimationRenderer(ModelPool("test-tiny"))
    result = renderer(anim, out_dir=Path("out/anim"), callback=print)

Frame 0 is an ordinary still render (or `init_frame`, the given image as it is). Every later
frame starts from the previous frame moved by the camera (research §1.11–1.15): a 2D affine
warp, a 3D depth warp (optionally with turbo in-betweens that skip diffusion, and VR eye views),
or, for video input, the next video frame blended with the previous output warped along the
optical flow. The moved frame is the init of
the next still render with frames_scale / frames_skip_steps (`AnimationSpec.frame_render_spec`).

Files under `out_dir`:

* ``animation.json`` — the spec and the settled base seed, written first, so a resumed run uses
  the same seed and refuses a folder that holds a different animation (engine.animation.runfolder);
* ``frames/NNNN.png`` — the frames, written atomically and last of everything a frame writes, so
  a frame on disk is whole and everything it depends on is already there;
* ``state/NNNN_new.png`` / ``_old.png`` — turbo's two warp chains, which differ from the saved
  frame; ``vr/frame_NNNN_l.png`` / ``_r.png`` — VR eye views;
* ``animation.mp4`` (+ ``animation_vr.mp4`` side by side in VR mode) and ``preview.gif``.

Every state carried from frame to frame is quantised to 8 bits exactly as its PNG stores it, so
resuming from the files on disk continues bit for bit like an uninterrupted run.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from engine.animation.camera import vr_eye_views, warp_3d
from engine.animation.depth import build_depth_model, estimate_depth
from engine.animation.flow import blend_init, flow_between, load_raft, random_raft, warp_with_flow
from engine.animation.runfolder import eye_file, frame_file, frames_done, settle_seed
from engine.animation.warp2d import warp_2d
from engine.diffusion.embeddings import load_image
from engine.diffusion.images import image_to_tensor, pil_to_unit, unit_to_pil
from engine.diffusion.pipeline import DiscoPipeline, RenderContext, StepCallback
from engine.diffusion.sampling import StepInfo
from engine.errors import Cancelled, EngineError
from engine.media.files import save_png
from engine.media.previews import animated_preview, side_by_side
from engine.media.video import check_selection, encode_mp4, iter_frames, probe_video
from engine.models.pool import ModelPool
from engine.spec.animation import AnimationSpec
from engine.spec.keyframes import turbo_blend_weight

VIDEO_BLEND = 0.5  # DD 5.7's video cell `blend`: the share of the newer frame


@dataclass(frozen=True)
class FrameEvent:
    """What the progress callback gets: one per denoising step (`step` set) and one when a frame
    is finished (`path` set). `frame` is 0-based; `frames` is the animation's frame count."""

    frame: int
    frames: int
    diffused: bool
    step: StepInfo | None = None
    context: RenderContext | None = None
    path: Path | None = None


FrameCallback = Callable[[FrameEvent], None]


@dataclass
class AnimationResult:
    frames: list[Path]
    mp4: Path
    preview: Path
    base_seed: int
    first_rendered: int              # frames before this one were already on disk (resume)
    seconds: float
    vr_frames: list[tuple[Path, Path]] = field(default_factory=list)
    vr_mp4: Path | None = None


def quantise(x: torch.Tensor) -> torch.Tensor:
    """The tensor as its PNG would give it back: what an uninterrupted run must carry forward
    so that it matches a run resumed from the files."""
    return x.clamp(0, 1).mul(255).round().div(255)


def load_frame(path: Path, device: torch.device) -> torch.Tensor:
    with Image.open(path) as image:
        return pil_to_unit(image, device)


class AnimationRenderer:
    """Renders AnimationSpecs with one model pool; depth and flow models load on first need.

    `depth_kind` / `flow_kind`: 'real' (MiDaS / RAFT weights from the model cache), 'tiny' or
    'random' (seeded random weights: meaningless motion, for tests and benchmarks). None picks
    'real' for the dd-default model set and 'tiny' otherwise.
    """

    def __init__(self, pool: ModelPool, *, depth_kind: str | None = None,
                 flow_kind: str | None = None, pipeline: DiscoPipeline | None = None):
        real = pool.model_set == "dd-default"
        self.pool = pool
        self.device = pool.device
        self.pipeline = pipeline or DiscoPipeline(pool)
        self.depth_kind = depth_kind or ("real" if real else "tiny")
        self.flow_kind = flow_kind or ("real" if real else "tiny")
        for name, kind in (("depth_kind", self.depth_kind), ("flow_kind", self.flow_kind)):
            if kind not in ("real", "tiny", "random"):
                raise EngineError(f"{name} must be 'real', 'tiny' or 'random', not {kind!r}")
        self._depth_model = None
        self._raft = None

    # ---- models ----------------------------------------------------------------------------

    def depth(self, frame: torch.Tensor) -> torch.Tensor:

        if self._depth_model is None:
            self._depth_model = build_depth_model(self.depth_kind, self.device,
                                                  allow_download=self.pool.allow_download)
        return estimate_depth(self._depth_model, frame)

    def raft(self) -> torch.nn.Module:

        if self._raft is None:
            if self.flow_kind == "real":
                self._raft = load_raft(allow_download=self.pool.allow_download, device=self.device)
            else:  # raft_small is the cheap stand-in; 'random' keeps the full architecture
                variant = "small" if self.flow_kind == "tiny" else "large"
                self._raft = random_raft(variant).to(self.device)
        return self._raft

    # ---- the loop ----------------------------------------------------------------------------

    def __call__(self, anim: AnimationSpec, *, out_dir: Path, callback: FrameCallback | None = None,
                 should_cancel: Callable[[], bool] | None = None,
                 resume: bool = True) -> AnimationResult:
        started = time.perf_counter()
        out_dir = Path(out_dir)
        # The run first (it probes a video input), so a bad video leaves no files behind.
        run = _Run(self, anim, out_dir, callback, should_cancel)
        run.seed = settle_seed(anim, out_dir, resume)
        first = run.resume_point() if resume else 0
        run.render_from(first)
        result = run.assemble()
        result.first_rendered = first
        result.seconds = time.perf_counter() - started
        shutil.rmtree(out_dir / ".work", ignore_errors=True)
        return result


class _Run:
    """One pass over an animation's frames, holding what is carried between frames."""

    def __init__(self, renderer: AnimationRenderer, anim: AnimationSpec, out_dir: Path,
                 callback: FrameCallback | None, should_cancel: Callable[[], bool] | None):
        self.r, self.anim, self.out = renderer, anim, out_dir
        self.seed = 0  # the settled base seed, set by AnimationRenderer before rendering
        self.device = renderer.device
        self.callback, self.should_cancel = callback, should_cancel
        self.mode = anim.animation_mode
        self.vr = anim.vr_mode and self.mode == "3D"
        self.turbo = anim.turbo_mode and self.mode == "3D"
        self.total = self._frame_count()
        self.diffused = anim.diffused_frames()[:self.total]
        self.series = {name: anim.series(name) for name in (
            "angle", "zoom", "translation_x", "translation_y", "translation_z",
            "rotation_3d_x", "rotation_3d_y", "rotation_3d_z")}
        # Carried state, all [1, 3, H, W] in [0, 1] and quantised: the previous output (turbo's
        # "new" chain) and turbo's "old" chain; raw video frames for video input.
        self.prev: torch.Tensor | None = None
        self.old: torch.Tensor | None = None

    def frame_path(self, n: int) -> Path:
        return frame_file(self.out, n)

    def _frame_count(self) -> int:
        if self.mode != "Video Input":
            return self.anim.max_frames

        info = probe_video(self.anim.video_init_path)
        return check_selection(info, self.anim.extract_nth_frame, self.anim.max_frames)

    def resume_point(self) -> int:
        """The first frame not on disk; the carried state is rebuilt from the files before it."""
        n = frames_done(self.out, self.total)
        if n == 0 or n == self.total:
            return n
        last = n - 1
        state_new = self.out / "state" / f"{last:04}_new.png"
        state_old = self.out / "state" / f"{last:04}_old.png"
        self.prev = load_frame(state_new if self.turbo else self.frame_path(last), self.device)
        self.old = load_frame(state_old, self.device) if self.turbo and state_old.exists() else None
        return n

    def render_from(self, first: int) -> None:
        if first >= self.total:
            return
        if self.mode == "Video Input":
            self._video_frames(first)
            return
        for n in range(first, self.total):
            self._check_cancel()
            if n == 0:
                output = self._given_frame() if self.anim.init_frame else self._diffuse(0, None)
                self.prev = output
            elif self.mode == "2D":
                s = self.series
                warped = quantise(warp_2d(self.prev, s["angle"][n], s["zoom"][n],
                                          s["translation_x"][n], s["translation_y"][n]))
                output = self._diffuse(n, warped)
                self.prev = output
            else:
                output = self._step_3d(n)
            self._finish(n, output)

    # ---- 3D and turbo ---------------------------------------------------------------------

    def _warp_3d(self, frame: torch.Tensor, n: int) -> torch.Tensor:
        a, s = self.anim, self.series
        translate = (s["translation_x"][n], s["translation_y"][n], s["translation_z"][n])
        rotate = (s["rotation_3d_x"][n], s["rotation_3d_y"][n], s["rotation_3d_z"][n])
        warped = warp_3d(frame, self.r.depth(frame), translate, rotate, fov=a.fov,
                         near=a.near_plane, far=a.far_plane, padding_mode=a.padding_mode,
                         sampling_mode=a.sampling_mode)
        return quantise(warped)

    def _step_3d(self, n: int) -> torch.Tensor:
        """DD's 3D frame (research §1.12–1.13). With turbo, after turbo_preroll an "old" chain is
        warped alongside the "new" one (the previous output); skipped frames save a blend of the
        two and carry the warped new chain on, diffused frames restart the old chain from it.
        Which frames diffuse is `AnimationSpec.diffused_frames()`; DD also diffuses frame
        turbo_preroll itself when it is off the turbo_steps grid, which that schedule does not."""
        warped = self._warp_3d(self.prev, n)
        if self.turbo and n >= self.anim.turbo_preroll:
            # DD starts the old chain at frame turbo_preroll; a preroll of 0 starts it at frame 1
            # (DD would read a stale file there).
            self.old = warped if self.old is None else self._warp_3d(self.old, n)
            if not self.diffused[n]:
                weight = turbo_blend_weight(n, self.anim.turbo_steps)
                self.prev = warped
                return quantise(warped * weight + self.old * (1 - weight))
            self.old = warped
        output = self._diffuse(n, warped)
        self.prev = output
        if self.turbo:
            # DD saves diffused frames (after the first) blended with the warped previous frame,
            # 1/turbo_steps on the new image, to smooth the jump from the in-betweens.
            weight = 1 / self.anim.turbo_steps
            return quantise(output * weight + warped * (1 - weight))
        return output

    # ---- video input ----------------------------------------------------------------------

    def _video_frames(self, first: int) -> None:

        a, render = self.anim, self.anim.render
        frames = iter_frames(a.video_init_path, every_nth=a.extract_nth_frame, width=render.width,
                             height=render.height, max_frames=self.total)
        raw_prev: torch.Tensor | None = None
        try:
            for n, array in enumerate(frames):
                raw = pil_to_unit(Image.fromarray(array, "RGB"), self.device)
                if n < first:  # already on disk: only the previous raw frame is needed
                    raw_prev = raw
                    continue
                self._check_cancel()
                if n == 0 or not a.video_init_flow_warp:
                    init = raw
                else:
                    flow = flow_between(self.r.raft(), raw, raw_prev).to(self.device)
                    warped = warp_with_flow(self.prev, flow)
                    init = quantise(blend_init(raw, warped, a.video_init_flow_blend))
                output = self._diffuse(n, init)
                self.prev = output
                self._finish(n, output)
                raw_prev = raw
        finally:
            frames.close()

    # ---- one diffused frame ---------------------------------------------------------------

    def _diffuse(self, n: int, init: torch.Tensor | None) -> torch.Tensor:
        """Frame n through the still pipeline; the init (if any) stays in memory, rounded to 8 bits
        as a saved frame would be, so a resumed run starts from exactly the same values."""
        label = f"init of frame {n} (in memory)" if init is not None else None
        spec = self.anim.frame_render_spec(n, init_image=label, seed=self.seed)
        start = quantise(init).mul(2).sub(1) if init is not None else None
        results = self.r.pipeline(spec, out_dir=self.out / ".work", callback=self._step_callback(n),
                                  should_cancel=self.should_cancel, run=0, init=start, keep_images=True)
        results[0].path.unlink(missing_ok=True)
        return quantise(results[0].image.add(1).div(2))

    def _step_callback(self, n: int) -> StepCallback | None:
        """The pipeline's step callback for frame n: each step as a FrameEvent, or None."""
        callback = self.callback
        if callback is None:
            return None

        def on_step(context: RenderContext, info: StepInfo) -> None:
            callback(FrameEvent(n, self.total, True, info, context))
        return on_step

    def _given_frame(self) -> torch.Tensor:
        """`init_frame` as frame 0: resized to the render size as an init image is, not diffused."""
        render = self.anim.render
        image = load_image(self.anim.init_frame, "init_frame")
        return quantise(image_to_tensor(image, render.width, render.height, self.device).add(1).div(2))

    def _check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("the animation was cancelled")

    def _finish(self, n: int, output: torch.Tensor) -> None:
        """Everything frame n leaves on disk; the frame itself last (see module docstring)."""
        state = self.out / "state"
        if self.turbo:
            save_png(unit_to_pil(self.prev), state / f"{n:04}_new.png", {})
            if self.old is not None:
                save_png(unit_to_pil(self.old), state / f"{n:04}_old.png", {})
            else:  # a file left by an earlier run in this folder would be read on resume
                (state / f"{n:04}_old.png").unlink(missing_ok=True)
        if self.vr:
            self._eye_views(n, output)
        text = {"disco_animation": self.anim.to_json(), "disco_frame": str(n),
                "disco_base_seed": str(self.seed), "disco_diffused": str(self.diffused[n]).lower()}
        path = save_png(unit_to_pil(output), self.frame_path(n), text)
        for old_state in state.glob("*.png") if self.turbo else ():
            if not old_state.name.startswith(f"{n:04}_"):
                old_state.unlink(missing_ok=True)  # only the latest frame's state is ever needed
        if self.callback is not None:
            self.callback(FrameEvent(n, self.total, self.diffused[n], path=path))

    def _eye_views(self, n: int, output: torch.Tensor) -> None:
        a = self.anim
        left, right = vr_eye_views(output, self.r.depth(output), a.vr_eye_angle, a.vr_ipd,
                                   fov=a.fov, near=a.near_plane, far=a.far_plane,
                                   padding_mode=a.padding_mode, sampling_mode=a.sampling_mode)
        for side, view in (("l", left), ("r", right)):
            save_png(unit_to_pil(view), eye_file(self.out, n, side), {})

    # ---- assembly -------------------------------------------------------------------------

    def assemble(self) -> AnimationResult:

        paths = [self.frame_path(n) for n in range(self.total)]
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise EngineError(f"frame {missing[0].name} is missing from {self.out / 'frames'}; "
                              "run the animation again to render it")
        fps = self.anim.fps
        shown = self._blended(paths)
        mp4 = encode_mp4(iter_images(shown), self.out / "animation.mp4", fps=fps)
        preview = animated_preview(iter_images(shown), self.out / "preview.gif", fps=fps)
        result = AnimationResult(paths, mp4, preview, self.seed, 0, 0.0)
        if self.vr:
            eyes = [(eye_file(self.out, n, "l"), eye_file(self.out, n, "r")) for n in range(self.total)]
            result.vr_frames = eyes
            result.vr_mp4 = encode_mp4(side_by_side(iter_images(e[0] for e in eyes),
                                                    iter_images(e[1] for e in eyes)),
                                       self.out / "animation_vr.mp4", fps=fps)
        return result


    def _blended(self, paths: list[Path]) -> list[Path]:
        """The frames the video shows, after DD 5.7's video_init_blend_mode: 'linear' mixes
        each frame half and half with the one before (in every mode, as DD does); 'optical
        flow' (Video Input only) mixes it with the one before warped along the video's flow;
        'None' shows the frames as rendered. Written to blend/; the frames stay as they are."""
        mode = self.anim.video_init_blend_mode
        if mode == "None" or (mode == "optical flow" and self.mode != "Video Input"):
            return paths
        folder = self.out / "blend"
        folder.mkdir(exist_ok=True)
        shown = [paths[0]] + [folder / p.name for p in paths[1:]]
        raws = self._video_raws() if mode == "optical flow" else None
        prev, raw_prev = None, None
        for n, path in enumerate(paths):
            frame = load_frame(path, self.device)
            raw = next(raws, None) if raws is not None else None
            if prev is not None:
                if raw is None or raw_prev is None:
                    mixed = prev * (1 - VIDEO_BLEND) + frame * VIDEO_BLEND
                else:
                    flow = flow_between(self.r.raft(), raw, raw_prev).to(self.device)
                    mixed = blend_init(frame, warp_with_flow(prev, flow), VIDEO_BLEND)
                save_png(unit_to_pil(quantise(mixed)), shown[n], {})
            prev, raw_prev = frame, raw
        if raws is not None:
            raws.close()
        return shown

    def _video_raws(self):
        """The input video's frames as the animation used them, one at a time."""
        a, render = self.anim, self.anim.render
        frames = iter_frames(a.video_init_path, every_nth=a.extract_nth_frame, width=render.width,
                             height=render.height, max_frames=self.total)
        try:
            for array in frames:
                yield pil_to_unit(Image.fromarray(array, "RGB"), self.device)
        finally:
            frames.close()


def iter_images(paths):
    """Frames loaded one at a time, so a long animation is never all in memory."""
    for path in paths:
        with Image.open(path) as image:
            yield image.convert("RGB")

