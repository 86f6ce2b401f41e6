"""A queued animation (job kind 'animation') inside the engine process.

`render_animation_job` runs in the worker's render thread: it renders the job's `AnimationSpec`
with the worker's `AnimationRenderer` (`JobContext.animator`) into the attempt's scratch folder
— which resumes from the frames already there (the worker brought back the frames earlier
attempts kept as blobs), so a crash or restart loses at most the frame in progress — and
reports through the job's context:

- progress: frame k of n (0-based `frame`) and the step within that frame;
- each finished frame becomes the job's blob, after what resuming after it needs (turbo's warp
  state, VR eye views): only then is it done, since another host may resume the animation;
- the preview: the frame being diffused every `display_rate` steps, then each finished frame;
- after each frame its GPU time is billed at once (engine/jobs/units.py: a finished frame is
  kept and reused by the next attempt, so its time is charged even if the animation later
  fails or is cancelled; a failure refunds only the unbilled rest); when the requester's quota
  is spent with frames to go, the animation stops and delivers the frames it finished;
- a cancel (or a lost lease) stops before the next step; the frames finished so far become
  `partial.mp4`, which the cancelled job still delivers;
- out of GPU memory, it fails at once: frames are small, resumable units (no in-process retry);
- each distinct prompt text whose end CLIP does not read is a note on the result.

Returns the artifacts: the MP4, the GIF preview, then the VR MP4 in VR mode. The frames stay
blobs of the job (frames/NNNN.png).
"""
from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from engine.animation.renderer import FrameEvent, iter_images
from engine.animation.runfolder import frame_file, frames_done
from engine.diffusion.prompt_length import animation_prompts
from engine.errors import Cancelled, EngineError
from engine.jobs.context import Handler, JobContext, fixed_seed
from engine.jobs.files import save_preview
from engine.jobs.units import UnitProgress
from engine.media.video import encode_mp4
from engine.spec.animation import AnimationSpec
from storage import Job

log = logging.getLogger("disco.engine")
PREVIEW_SIDE = 512


def animation_of(job: Job) -> AnimationSpec:
    """The job's animation, validated again, with its seed fixed: a resumed attempt must draw
    the same noise (SpecError when it is not a valid animation)."""
    anim = AnimationSpec.from_json(job.spec_json)
    if anim.render.seed is None:
        anim = anim.replace(render={**anim.render.to_dict(), "seed": fixed_seed(job)})
    return anim


def render_animation_job(ctx: JobContext, anim: AnimationSpec) -> list[str]:
    """The render thread's body for an animation job (see the module docstring)."""
    folder, live = ctx.folder, ctx.live
    progress = UnitProgress(ctx, anim.max_frames, "frame")
    display_rate = anim.render.display_rate
    ctx.note_unread_prompts(anim.render.clip_models, animation_prompts(anim))

    def on_event(event: FrameEvent) -> None:
        if event.step is not None:
            if display_rate and event.step.step % display_rate == 0:
                ctx.show(save_preview(folder, event.step.pred_xstart, PREVIEW_SIDE))
            progress.step(event.frame, event.step)
        elif _keep_frame(ctx, event.frame, event.path):  # frame k is a blob: it becomes the preview
            with Image.open(event.path) as frame:
                preview = save_preview(folder, frame, PREVIEW_SIDE)
            progress.finished(event.frame, preview)

    def run():
        return ctx.animator(anim, out_dir=folder, callback=on_event, should_cancel=ctx.cancel.is_set)

    render = anim.render
    try:
        result = ctx.guarded(run, f"out of GPU memory while rendering a {render.width}×{render.height} "
                                  f"animation frame; use a smaller width and height or fewer cutn_batches")
    except Cancelled as stop:
        partial = () if ctx.handing_back else _partial_video(folder, anim)  # a hand-back delivers nothing
        if live.quota_spent:
            raise progress.quota_spent(partial) from None
        raise Cancelled(str(stop), artifacts=partial) from None
    artifacts = [str(result.mp4), str(result.preview)]
    return artifacts + ([str(result.vr_mp4)] if result.vr_mp4 is not None else [])


def _keep_frame(ctx: JobContext, n: int, frame: Path) -> bool:
    """Frame n as the job's blobs: what resuming after it reads first, the frame last (its
    blob marks it done). False when the attempt lost the job."""
    folder = ctx.folder
    extras = sorted((folder / "state").glob(f"{n:04}_*.png")) + sorted((folder / "vr").glob(f"frame_{n:04}_*.png"))
    if any(ctx.push(path, "state") is None for path in extras):
        return False
    return ctx.push(frame, "frame") is not None


def _partial_video(folder: Path, anim: AnimationSpec) -> tuple[str, ...]:
    """The frames finished before a cancel as `partial.mp4` (nothing when there are none)."""
    frames = [frame_file(folder, n) for n in range(frames_done(folder))]
    if not frames:
        return ()
    try:
        return (str(encode_mp4(iter_images(frames), folder / "partial.mp4", fps=anim.fps)),)
    except (EngineError, OSError) as exc:  # the cancel stands; only the partial video is lost
        log.warning("could not encode the %d finished frames in %s: %s", len(frames), folder, exc)
        return ()


HANDLER: Handler[AnimationSpec] = Handler(spec_of=animation_of, render=render_animation_job)
