"""A still (job kind 'still'): one or more images of a `RenderSpec`, inside the engine process.

`render_still` runs in the worker's render thread. It renders with the shared `DiscoPipeline`
into the attempt's scratch folder, showing `preview.png` every `display_rate` steps (stored
with the next progress report) and pushing `checkpoint.pt` every `checkpoint_every` steps as
the job's blob (the images finished before a checkpoint first, so the checkpoint counts only
once they are kept), and pushes each intermediate save as soon as it is written. It reports
progress after each step (throttled). A job whose earlier attempt died — on this host or
another — resumes: the whole images and saves already kept are brought back and the image in
progress continues from its checkpoint, so the final PNG and evolution video equal an
uninterrupted run's.

With `describe` on, nothing is rendered: the init image is described as a prompt
(engine/jobs/describe.py). With `gobig` on, each image is then enlarged tile by tile (engine/jobs/gobig.py); with
`gobig_init`, only that image is enlarged and nothing is rendered first.

Out of GPU memory, the still is retried once in the same thread in a cheaper way
(engine/jobs/degrade.py), then fails saying what to change. The retry is a note on the result
(`JobContext.note`) and a mark kept with the job, so a resumed attempt goes the cheaper way at
once. A prompt whose end CLIP does not read and an evolution video left out are notes too.
Returns the images, in order, then (with intermediate_saves) each image's evolution: its partials and the final image as
`{batch}(0)_{i}_evolution.mp4`, which Discord shows beside the result.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from engine.diffusion.pipeline import Resume
from engine.diffusion.prompt_length import still_prompts
from engine.diffusion.progress import save_partial
from engine.errors import EngineError, OutOfMemory
from engine.jobs.context import Handler, JobContext, fixed_seed
from engine.jobs.degrade import CheaperWay, cheaper_way, out_of_memory_advice
from engine.jobs.describe import describe_job
from engine.jobs.files import Checkpoint, load_checkpoint, save_checkpoint, save_preview, spec_digest
from engine.jobs.gobig import enlarge_images
from engine.media.video import encode_mp4
from engine.spec.render import RenderSpec
from storage import Job

log = logging.getLogger("disco.engine")
EVOLUTION_FPS = 4
CHEAPER_MARK = "out_of_memory.txt"  # the job went the cheaper way (kept as a blob for a resume)


def still_of(job: Job) -> RenderSpec:
    """The job's spec, validated again, with its seed fixed: a resumed attempt must draw the
    same noise (SpecError when it is not a valid spec)."""
    spec = RenderSpec.from_json(job.spec_json)
    return spec if spec.seed is not None else spec.replace(seed=fixed_seed(job))


def render_still(ctx: JobContext, spec: RenderSpec) -> list[str]:
    """The render thread's body for a still: the images, then their evolution videos; with
    `gobig`, the enlarged images instead (engine/jobs/gobig.py), of `gobig_init` when it is
    given, else of the images rendered first."""
    if spec.describe:
        return describe_job(ctx, spec)
    ctx.note_unread_prompts(spec.clip_models, still_prompts(spec))
    if spec.gobig_init:
        return enlarge_images(ctx, spec, [])
    images, spec = _render_or_cheaper(ctx, spec)
    if spec.gobig:
        for image in images:  # kept first: a resumed attempt enlarges them without rendering again
            ctx.push(Path(image), "output")
        return enlarge_images(ctx, spec, images)
    return images + _evolutions(ctx, spec, images)


def _render_or_cheaper(ctx: JobContext, spec: RenderSpec) -> tuple[list[str], RenderSpec]:
    """The images, with the one cheaper retry (see the module docstring), and the spec used.
    A resumed attempt whose job already went the cheaper way goes that way at once: what the
    earlier attempt kept (images, its checkpoint) was made so."""
    way = cheaper_way(spec)
    if way is not None and (ctx.folder / CHEAPER_MARK).is_file():
        return _render_cheaper(ctx, way)
    try:
        return _render(ctx, spec), spec
    except OutOfMemory:
        if way is None:
            raise OutOfMemory(out_of_memory_advice(spec)) from None
        log.warning("job %s: out of GPU memory; %s", ctx.job.id, way.how)
    # Retried after the except block: the first try's traceback no longer holds its tensors.
    (ctx.folder / CHEAPER_MARK).write_text(way.how + "\n")
    ctx.push(ctx.folder / CHEAPER_MARK, "state")  # kept before anything made the cheaper way
    return _render_cheaper(ctx, way)


def _render_cheaper(ctx: JobContext, way: CheaperWay) -> tuple[list[str], RenderSpec]:
    ctx.note(f"Out of GPU memory at first; {way.how}.")
    try:
        return _render(ctx, way.spec, way.batch_cuts), way.spec
    except OutOfMemory:
        raise OutOfMemory(f"{out_of_memory_advice(way.spec)} (already {way.how})") from None


def _evolutions(ctx: JobContext, spec: RenderSpec, images: list[str]) -> list[str]:
    """Each image's intermediate saves then the image itself as an MP4 (none without saves).
    A video that cannot be encoded is logged, noted and left out: the images are the result."""
    folder, videos = ctx.folder, []
    for index, image in enumerate(images if spec.intermediate_saves else []):
        partials = sorted((folder / "partials").glob(f"{spec.batch_name}(0)_{index}-*.png"))
        if not partials:
            continue
        frames = partials + [Path(image)] * EVOLUTION_FPS  # the result held for a second
        path = folder / f"{spec.batch_name}(0)_{index}_evolution.mp4"
        try:
            videos.append(str(encode_mp4(_opened(frames), path, fps=EVOLUTION_FPS)))
        except (EngineError, OSError) as exc:
            log.warning("could not encode the evolution of %s: %s", image, exc)
            ctx.note(f"The evolution video of image {index + 1} is left out: it could not be encoded.")
    return videos


def _opened(paths: list[Path]):
    for path in paths:
        with Image.open(path) as image:
            yield image.convert("RGB")


def _images(ctx: JobContext, spec: RenderSpec) -> list[str]:
    """The spec's finished images in the job folder (PNGs are written atomically: each is whole)."""
    return sorted(str(p) for p in ctx.folder.glob(f"{spec.batch_name}(0)_*.png"))


def _resume_point(ctx: JobContext, spec_json: str, n_batches: int, finished: int) -> Resume | None:
    """Where an earlier attempt stopped: its checkpoint for this very spec, else the start of
    the first image not saved yet; None for a fresh job."""
    checkpoint = load_checkpoint(ctx.folder, ctx.portable(spec_json), ctx.pool.device)
    resume = None
    if checkpoint and checkpoint.image_index >= finished:
        resume = Resume(checkpoint.image_index, checkpoint.state)
    elif finished:
        resume = Resume(min(finished, n_batches - 1))
    if resume:
        log.info("job %s: resuming at image %d (%s)", ctx.job.id, resume.index,
                 "from its checkpoint" if resume.state else "from its start")
    return resume


def _render(ctx: JobContext, spec: RenderSpec, batch_cuts: bool = True) -> list[str]:
    """One try: the pipeline with callbacks that preview, checkpoint and report."""
    folder, live, every = ctx.folder, ctx.live, ctx.config.checkpoint_every
    spec_json = spec.to_json()
    digest = spec_digest(ctx.portable(spec_json))  # the same on every host
    images = _images(ctx, spec)
    if len(images) >= spec.n_batches:  # the last attempt died between the last image and `complete`
        return images
    resume = _resume_point(ctx, spec_json, spec.n_batches, len(images))

    def on_step(context, info) -> None:
        live.stepped(info)
        partial = save_partial(context, info)
        if partial is not None:  # kept at once: a resumed attempt's evolution video has them all
            ctx.push(partial, "frame")
        if spec.display_rate and info.step % spec.display_rate == 0:
            ctx.show(save_preview(folder, info.pred_xstart))
        if every and info.step % every == 0 and info.step < info.total:
            for image in _images(ctx, spec):  # kept before the checkpoint that skips them
                ctx.push(Path(image), "output")
            state = info.snapshot()
            path = save_checkpoint(folder, Checkpoint(context.index, state, digest))
            live.checkpoint_path = ctx.push(path, "checkpoint") or live.checkpoint_path
        ctx.report_if_due()  # waits for the answer, so a cancel stops the very next step

    def run() -> list[str]:
        ctx.pipeline(spec, out_dir=folder, callback=on_step, run=0, resume=resume,
                     should_cancel=ctx.cancel.is_set, batch_cuts=batch_cuts)
        return _images(ctx, spec)

    return ctx.guarded(run, "out of GPU memory")


HANDLER: Handler[RenderSpec] = Handler(spec_of=still_of, render=render_still)
