"""Turn everything a `/disco` request carries into one checked `ParsedJob`.

Settings come from several places. Later sources win, in this order:

1. DD's defaults, with `BOT_DEFAULTS` on top (one image per job, not DD's 50);
2. the server's defaults (`guild_defaults`), then the channel's own (`channel_defaults`), then
   the member's own (`own_defaults`, `/disco-settings defaults:`; see commands/defaults.py);
3. the preset (a dict of settings, or its stored spec JSON; a re-run's is the earlier job's
   whole spec, so a re-run repeats that job and takes no defaults of today);
4. `settings_file`: a DD ``settings.txt`` (only the keys the file contains);
5. `settings`: ``"key=value; key=value"``;
6. flags in the prompt (``--steps 100``);
7. the explicit slash options (``steps:100``).

Slash options beat prompt flags because they are the deliberate, form-checked choice: prompt
text is often pasted from elsewhere, ``--ar`` and all. Whenever one of the user's own sources
(4-7) replaces another, a note says which value won. The prompt text's weighted prompts
replace text_prompts from any other source.

Images come only from attachments (`init_image`, `image_prompts` hold the blob references of
what the bot downloaded, storage/blobs.py): a path in typed settings is refused and one in a file, preset or default
is dropped with a note, since a typed path or URL could read the bot's own files.

Then the server's limits apply. Clamped, with the limit and the fix in a note: steps (skip_steps
scaled to keep its share), size (shape kept), cutn_batches, images. A clamped job still paints
what was asked, a little cheaper, and the echo shows why, so refusing would only make people
retype. Refused: a cut schedule whose single batch is over `max_cuts` (no value of ours can
fix it). Last, a missing seed is drawn now so every retry and rerun draws the same noise.
"Paint from this image" also passes the image's size (`image_shape`: the render takes its shape
unless a size was chosen) and a share of the final steps to skip (`skip_share`, unless
skip_steps was chosen), both settled here so the limits and the notes see them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, fields, replace
from typing import Any

from commands.defaults import (
    BOT_DEFAULTS,
    CHANNEL_DEFAULTS,
    IMAGES_NOTE,
    OWN_DEFAULTS,
    OWN_DEFAULTS_FIX,
    SERVER_DEFAULTS,
    baseline_for,
    defaults_used,
    plain_settings,
    usable_defaults,
    usable_own_defaults,
)
from commands.errors import CommandError
from commands.gpu_memory import check_gpu_memory
from commands.prompt_syntax import (
    ATTACHMENT_ONLY,
    ParsedPrompt,
    add_negatives,
    parse_prompt_text,
    resolve_model_name,
)
from commands.sizes import MAX_RATIO, aspect_size, fit_pixels, side_for_ratio, size_choice
from engine.errors import SpecError
from engine.media.still_formats import CONTENT_TYPES, EXTENSIONS, FORMAT_LIST
from engine.spec.ddfile import read_settings
from engine.spec.ddsettings import import_dd_settings
from engine.spec.fields import is_no_value
from engine.spec.prompts import WeightedPrompt, format_prompts, parse_prompts
from engine.spec.overrides import parse_set_options
from engine.spec.render import RenderSpec, follow_steps
from engine.spec.schedules import short_repr
from engine.spec.sources import is_dd_file
from storage import DEFAULT_LIMITS, GuildLimits

MAX_SEED = 2**32 - 1
# Slash option -> RenderSpec field.
OPTION_FIELDS = {"steps": "steps", "width": "width", "height": "height", "seed": "seed",
                 "clip_guidance_scale": "clip_guidance_scale", "cutn_batches": "cutn_batches",
                 "skip_steps": "skip_steps", "init_scale": "init_scale", "model": "diffusion_model",
                 "sampling_mode": "sampling_mode", "n": "n_batches", "gobig": "gobig"}
# Shown apart in the echo, so left out of the "non-default settings".
ECHOED_APART = ("text_prompts", "image_prompts", "init_image", "gobig_init", "seed")


@dataclass(frozen=True)
class JobLimits:
    """A server's caps for one job: storage's `GuildLimits` for size (defaults included, so the
    two never drift; `max_images` included) plus the GPU memory. `max_cuts`: CLIP cuts per step, see
    `cuts_per_step`; `max_frames` is for animations (unused by `/disco`)."""

    max_steps: int = DEFAULT_LIMITS.max_steps
    max_pixels: int = DEFAULT_LIMITS.max_pixels
    max_cuts: int = DEFAULT_LIMITS.max_cuts
    max_frames: int = DEFAULT_LIMITS.max_frames
    max_images: int = 4
    gpu_memory_gb: float = 0.0  # the engine GPU's memory ([engine] gpu_memory_gb); 0 = unknown

    @classmethod
    def from_guild(cls, limits: GuildLimits, **overrides: int | float) -> JobLimits:
        """A guild's limits, with `overrides` (e.g. max_images) on top."""
        values = {f.name: getattr(limits, f.name) for f in fields(cls) if hasattr(limits, f.name)}
        return cls(**{**values, **overrides})


@dataclass(frozen=True)
class DiscoOptions:
    """The `/disco` slash options as received; None = not given. `settings_file` is the file's
    content; `init_image`/`image_prompts` name checked, downloaded attachments (blob references),
    `gobig_init` a kept copy of a finished result (⬆)."""

    prompt: str = ""
    steps: int | None = None
    width: int | None = None
    height: int | None = None
    size: str | None = None
    seed: int | None = None
    clip_guidance_scale: float | None = None
    cutn_batches: int | None = None
    skip_steps: int | None = None
    init_scale: float | None = None
    model: str | None = None
    sampling_mode: str | None = None
    n: int | None = None
    settings: str | None = None
    settings_file: str | bytes | None = None
    init_image: str | None = None
    image_prompts: tuple[str, ...] = ()
    gobig: bool | None = None
    gobig_init: str | None = None  # the kept copy of a result that ⬆ enlarges
    # Unless the member chose skip_steps: skip this share of the final steps, those left once the
    # server's limits apply ("Paint from this image" skips half, so the image's layout stays).
    skip_share: float | None = None
    # An init image's width and height: the painting takes its shape (as --ar would) unless the
    # member chose a size ("Paint from this image": DD stretches the image to the render's size).
    image_shape: tuple[int, int] | None = None


@dataclass
class ParsedJob:
    """A checked job: the spec to render plus what to tell the user about it."""

    spec: RenderSpec
    notes: list[str]
    prompts: list[WeightedPrompt]
    image_prompts: list[WeightedPrompt]
    non_defaults: dict[str, Any]
    seed_was_random: bool = False
    syntax: str = "none"
    # The member's own defaults this job kept (setting → value), so that a refusal at the queue's
    # door (a model the server does not allow) can say where the setting came from.
    own_defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def cuts(self) -> int:
        return cuts_per_step(self.spec)

    def without_gobig(self, images: str) -> ParsedJob:
        """This job with GoBig off and a note, for `images` the engine never enlarges (an
        animation's frames, a study's cells): gobig may come typed, from a preset, the server's
        defaults or the GoBig result being animated."""
        if not self.spec.gobig:
            return self
        return replace(self, spec=self.spec.model_copy(update={"gobig": False}),
                       non_defaults={k: v for k, v in self.non_defaults.items() if k != "gobig"},
                       notes=[*self.notes, f"gobig ignored: GoBig enlarges still images, not {images} — "
                                           f"use ⬆ under a /disco result to enlarge one"])


def cuts_per_step(spec: RenderSpec) -> int:
    """CLIP cuts per step, as DD users count them: the busiest schedule position × batches."""
    schedules = spec.schedules()
    return max(o + i for o, i in zip(schedules.overview, schedules.innercut)) * spec.cutn_batches


class _Merge:
    """Settings merged source by source, remembering who set each and noting user overrides."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        self.by_user: set[str] = set()
        self.notes: list[str] = []

    def add(self, values: dict[str, Any], label: str | dict[str, str], *, user: bool) -> None:
        kept = follow_steps(self.values, values)  # DD's defaults follow new steps / a new model
        for key in [key for key in self.values if key not in kept]:
            self.forget(key)
        for key, value in values.items():
            name = label if isinstance(label, str) else label[key]
            if user and key in self.by_user and self.values[key] != value:
                self.notes.append(f"{key}: {short_repr(value)} from {name} replaces "
                                  f"{short_repr(self.values[key])} from {self.origin[key]}")
            self.values[key], self.origin[key] = value, name
            (self.by_user.add if user else self.by_user.discard)(key)

    def forget(self, key: str) -> None:
        """Drop `key` as if no source had set it."""
        self.values.pop(key, None)
        self.origin.pop(key, None)
        self.by_user.discard(key)

    def build(self, extra: dict[str, Any] | None = None) -> RenderSpec:
        try:
            return RenderSpec.from_dict({**self.values, **(extra or {})})
        except SpecError as err:
            if err.param in self.origin:
                origin = self.origin[err.param]
                fix = f"; {OWN_DEFAULTS_FIX}" if origin == OWN_DEFAULTS else ""
                raise SpecError(f"{err} (set by {origin}{fix})", err.param) from None
            raise


def build_job(options: DiscoOptions, *, limits: JobLimits = JobLimits(),
              guild_defaults: dict[str, Any] | None = None,
              channel_defaults: dict[str, Any] | None = None,
              own_defaults: dict[str, Any] | None = None,
              preset: dict[str, Any] | str | None = None, preset_name: str | None = None,
              rng: random.Random | None = None) -> ParsedJob:
    """Merge, check and limit one `/disco` request; SpecError/CommandError says what to fix."""
    parsed = parse_prompt_text(options.prompt or "")
    merge = _Merge()
    merge.add(BOT_DEFAULTS, "the bot's defaults", user=False)
    _add_quietly(merge, usable_defaults(guild_defaults, SERVER_DEFAULTS, merge.notes), SERVER_DEFAULTS)
    _add_quietly(merge, usable_defaults(channel_defaults, CHANNEL_DEFAULTS, merge.notes), CHANNEL_DEFAULTS)
    _add_quietly(merge, usable_own_defaults(own_defaults, merge.notes), OWN_DEFAULTS)
    _add_quietly(merge, preset, f"preset '{preset_name or '?'}'")
    file_report = _add_settings_file(merge, options.settings_file)
    try:
        typed = parse_set_options(options.settings)
    except SpecError as err:
        raise SpecError(f"settings option: {err}", err.param) from None
    _refuse_image_paths(typed, "the settings option")
    merge.add(typed, "the settings option", user=True)
    spec_flags = {k: v for k, v in parsed.flags.items() if k in RenderSpec.model_fields}
    merge.add(spec_flags, {k: f"{parsed.flag_names[k]} in the prompt" for k in spec_flags},
              user=True)
    chosen = {OPTION_FIELDS[name]: _option_value(name, getattr(options, name))
              for name in OPTION_FIELDS if getattr(options, name) is not None}
    merge.add(chosen, {OPTION_FIELDS[n]: f"the {n} option" for n in OPTION_FIELDS}, user=True)
    _settle_prompts(merge, parsed, options)
    share = options.skip_share if "skip_steps" not in merge.by_user else None
    if share is not None:  # a default's skip_steps gives way to the share of the final steps
        merge.forget("skip_steps")
    first = merge.build()
    notes = list(parsed.notes) + file_report
    _settle_size(merge, first, parsed, options, limits, notes)
    sized = merge.build()
    changes = _apply_limits(sized, limits, notes)
    final = merge.build(changes)
    if share is not None:  # of the steps the limits left
        merge.add({"skip_steps": min(final.steps - 1, int(final.steps * share))}, "the init image", user=False)
        final = merge.build(changes)
    check_gpu_memory(final, limits.gpu_memory_gb)
    spec_notes = list(final.notes)  # before the seed is drawn: replace() starts fresh notes
    seed_was_random = final.seed is None
    if seed_was_random:
        final = final.replace(seed=(rng or random.SystemRandom()).randint(0, MAX_SEED))
    if (final.init_image and "skip_steps" not in merge.by_user
            and final.skip_steps < final.steps // 4):
        notes.append(f"init image with skip_steps {final.skip_steps}: DD users usually skip about "
                     f"half the steps (e.g. skip_steps={final.steps // 2}) to keep its layout")
    notes += defaults_used(merge.values, merge.origin)
    notes = list(dict.fromkeys(merge.notes + notes + list(sized.notes) + spec_notes))
    return ParsedJob(spec=final, notes=notes, prompts=list(final.text_prompts),
                     image_prompts=list(final.image_prompts), non_defaults=non_defaults(final),
                     seed_was_random=seed_was_random, syntax=parsed.syntax,
                     own_defaults=_own_defaults_kept(final, merge))


def _own_defaults_kept(spec: RenderSpec, merge: _Merge) -> dict[str, Any]:
    """The final values of the settings the member's own defaults gave this job."""
    data = spec.to_dict()
    return {key: data[key] for key, origin in merge.origin.items() if origin == OWN_DEFAULTS}


def non_defaults(spec: RenderSpec, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings that differ from `bot_baseline(defaults)`, prompts/images/seed left out."""
    base = baseline_for(spec, defaults)
    return {key: value for key, value in spec.to_dict().items()
            if key not in ECHOED_APART and key != "schema_version" and base.get(key) != value}


# ---- sources ------------------------------------------------------------------------------

def _add_quietly(merge: _Merge, values: dict[str, Any] | str | None, label: str) -> None:
    """Defaults or a preset: image paths are dropped (see the module docstring)."""
    plain = plain_settings(values, label)
    for key in ATTACHMENT_ONLY:
        if plain.pop(key, None):
            merge.notes.append(f"{key} from {label} ignored: {IMAGES_NOTE}")
    merge.add(plain, label, user=False)


SETTINGS_FILE = "the settings file"


def _add_settings_file(merge: _Merge, content: str | bytes | None) -> list[str]:
    """The keys a settings file sets (others keep the lower sources); its report as notes. A DD
    file goes through the DD importer; our own settings JSON (what a PNG of ours carries: the
    whole spec, seed included) is taken as it is, as the command line takes it
    (`engine.spec.sources.is_dd_file`)."""
    if content is None:
        return []
    data = read_settings(content, "the settings file")
    if is_dd_file(data):
        spec, report = import_dd_settings(data)
        values = {k: v for k, v in spec.to_dict().items() if k in spec.model_fields_set}
    else:
        values, report = {k: v for k, v in data.items() if k != "schema_version"}, []
    for key, how in ATTACHMENT_ONLY.items():
        if values.pop(key, None):
            report.append(f"{key} ignored: {how}")
    merge.add(values, SETTINGS_FILE, user=True)
    return [f"settings file: {line}" for line in report]


def _refuse_image_paths(values: dict[str, Any], label: str) -> None:
    for key, how in ATTACHMENT_ONLY.items():
        if values.get(key) != [] and not is_no_value(values.get(key)):
            raise CommandError(f"{key} in {label}: images come from attachments only — {how}",
                               key, rule="attachments_only")


def _option_value(name: str, value: Any) -> Any:
    return resolve_model_name(value) if name == "model" else value


def _settle_prompts(merge: _Merge, parsed: ParsedPrompt, options: DiscoOptions) -> None:
    """text_prompts from the prompt text, else from the sources; attachments as images."""
    if options.init_image:
        merge.add({"init_image": options.init_image}, "the init_image option", user=True)
    if options.gobig_init:
        merge.add({"gobig_init": options.gobig_init}, "the image to enlarge", user=True)
    if options.image_prompts:
        merge.add({"image_prompts": [{"text": p, "weight": 1.0} for p in options.image_prompts]},
                  "the image_prompt option", user=True)
    if parsed.prompts:
        typed = _dicts(parsed.all_prompts)
        if merge.origin.get("text_prompts") == SETTINGS_FILE and merge.values["text_prompts"] != typed:
            _note_file_prompt(merge)
        merge.add({"text_prompts": typed}, "the prompt", user=True)
        return
    if "text_prompts" in merge.values:
        if parsed.no_items:
            try:
                current = parse_prompts(merge.values["text_prompts"])
            except SpecError as err:
                source = merge.origin["text_prompts"]
                raise SpecError(f"{err} (set by {source})", err.param) from None
            merge.values["text_prompts"] = _dicts(add_negatives(current, parsed.no_items))
        return
    if options.image_prompts and not parsed.no_items:
        merge.add({"text_prompts": []}, "the image_prompt option", user=False)
        return
    raise CommandError("prompt: nothing to paint — write a prompt, e.g. 'a lighthouse in a "
                       "storm, oil painting' (or attach a settings file or image prompt)",
                       "text_prompts", rule="prompt_required")


def _note_file_prompt(merge: _Merge) -> None:
    """The typed prompt wins over a settings file's (the prompt option is required): say what
    the file's was, in words rather than as "a list of 2 items", and drop it quietly."""
    try:
        carried = format_prompts(parse_prompts(merge.values["text_prompts"]))
    except SpecError:
        carried = short_repr(merge.values["text_prompts"])
    merge.notes.append(f"prompt: yours replaces the settings file's {short_repr(carried)}")
    merge.forget("text_prompts")


def _dicts(prompts: list[WeightedPrompt]) -> list[dict[str, Any]]:
    return [{"text": p.text, "weight": p.weight} for p in prompts]


# ---- size and limits ----------------------------------------------------------------------

def _settle_size(merge: _Merge, spec: RenderSpec, parsed: ParsedPrompt, options: DiscoOptions,
                 limits: JobLimits, notes: list[str]) -> None:
    """Apply a size choice and --ar to the width/height the sources settled on."""
    name, label = (options.size, "the size option") if options.size else (None, "")
    if "size" in parsed.flags:
        if name and name.strip().lower() != parsed.flags["size"]:
            merge.notes.append(f"size: {name} from the size option replaces "
                               f"{parsed.flags['size']} from --size in the prompt")
        name, label = (name, label) if name else (parsed.flags["size"], "--size in the prompt")
    ratio, shaped_by = parsed.flags.get("aspect_ratio"), "--ar in the prompt"
    explicit = [side for side in ("width", "height") if side in merge.by_user
                and merge.origin[side] != "the settings file"]
    width, height = spec.width, spec.height
    if ratio is None and not name and not explicit and options.image_shape:
        _shape_like_image(merge, options.image_shape, min(width * height, limits.max_pixels), notes,
                          f"about the pixel count of {width}×{height}")
        return
    if name:
        if explicit:
            raise CommandError(f"size: {label} and {explicit[0]} ({merge.origin[explicit[0]]}) "
                               f"both set the size; keep one", "size", rule="size_conflict")
        choice = size_choice(name)
        width, height = choice.width, choice.height
        merge.add({"width": width, "height": height}, label, user=True)
    if ratio is None:
        return
    if len(explicit) == 2:
        raise CommandError("--ar: width and height are both given, so there is no side left to "
                           "shape; drop --ar or one of them", "aspect_ratio", rule="size_conflict")
    if explicit:
        given, other = explicit[0], "height" if explicit[0] == "width" else "width"
        value = side_for_ratio(getattr(spec, given), *ratio, given=given)
        merge.add({other: value}, "--ar in the prompt", user=True)
        return
    fitted = aspect_size(*ratio, min(width * height, limits.max_pixels))
    merge.add({"width": fitted.width, "height": fitted.height}, shaped_by, user=True)
    notes.append(fitted.note or f"--ar {ratio[0]:g}:{ratio[1]:g} → {fitted.width}×"
                 f"{fitted.height} (about the pixel count of {width}×{height})")


def _shape_like_image(merge: _Merge, image: tuple[int, int], budget: int, notes: list[str], about: str) -> None:
    """The render sized like the init image (`image`: its width and height) within `budget`
    pixels; a strip past MAX_RATIO is painted at MAX_RATIO, said with the fix."""
    across, down = image
    ratio = min(max(across / down, 1 / MAX_RATIO), MAX_RATIO)
    asked = f"the image's shape ({across}×{down})"
    fitted = aspect_size(ratio, 1, budget, asked=asked)
    merge.add({"width": fitted.width, "height": fitted.height}, "the image's shape", user=False)
    if ratio != across / down:
        notes.append(f"{asked} is squeezed to {fitted.width}×{fitted.height}: {MAX_RATIO:g}:1 is the longest "
                     f"strip DD paints well — crop the image for another shape")
    else:
        notes.append(fitted.note or f"{asked} → {fitted.width}×{fitted.height} ({about})")


LIMIT_OF = {"steps": "max_steps", "skip_steps": "max_steps", "width": "max_pixels", "height": "max_pixels",
            "cutn_batches": "max_cuts", "n_batches": "max_images"}  # the limit that lowers each setting


def limited_values(spec: RenderSpec, limits: JobLimits) -> dict[str, Any]:
    """The settings of `spec` the server's limits would lower, with their new values ({} when
    it would be refused instead: the refusal says so when a job asks)."""
    try:
        return _apply_limits(spec, limits, [])
    except CommandError:
        return {}


def limit_adjustments(spec: RenderSpec, limits: JobLimits) -> list[str]:
    """What the server's limits would change in (or refuse of) a job with `spec`, as notes."""
    notes: list[str] = []
    try:
        _apply_limits(spec, limits, notes)
    except CommandError as err:
        notes.append(f"refused: {err}")
    return notes


def _apply_limits(spec: RenderSpec, limits: JobLimits, notes: list[str]) -> dict[str, Any]:
    """The changes that bring `spec` within the server's limits, each noted with its reason."""
    changes: dict[str, Any] = {}
    if spec.steps > limits.max_steps:
        steps = max(2, limits.max_steps)
        changes["steps"] = steps
        text = (f"steps {spec.steps} → {steps}: this server allows at most {steps} (max_steps); "
                f"ask an admin to raise it, or ask for fewer")
        if "skip_steps" in spec.model_fields_set:
            skip = min(steps - 1, round(spec.skip_steps * steps / spec.steps))
            changes["skip_steps"] = skip
            text += f" (skip_steps {spec.skip_steps} → {skip}, the same share)"
        notes.append(text)
    fitted = fit_pixels(spec.width, spec.height, limits.max_pixels)
    if fitted.note:
        changes.update(width=fitted.width, height=fitted.height)
        notes.append(fitted.note)
    per_batch = cuts_per_step(spec) // spec.cutn_batches
    if per_batch > limits.max_cuts:
        raise CommandError(
            f"cuts: the cut schedules use up to {per_batch} cuts in one batch (cut_overview + "
            f"cut_innercut); this server allows at most {limits.max_cuts} cuts per step "
            f"(max_cuts) — lower them, e.g. cut_overview=[12]*400+[4]*600; "
            f"cut_innercut=[4]*400+[12]*600", "cut_overview", rule="max_cuts")
    if per_batch * spec.cutn_batches > limits.max_cuts:
        batches = limits.max_cuts // per_batch
        changes["cutn_batches"] = batches
        notes.append(f"cutn_batches {spec.cutn_batches} → {batches}: {per_batch} cuts × "
                     f"{spec.cutn_batches} batches is over this server's {limits.max_cuts} cuts "
                     f"per step (max_cuts); ask an admin to raise it, or use fewer batches")
    if spec.n_batches > limits.max_images:
        changes["n_batches"] = max(1, limits.max_images)
        notes.append(f"images {spec.n_batches} → {changes['n_batches']}: this server allows at "
                     f"most {limits.max_images} per job (max_images); queue another job for more")
    return changes


# ---- attachments --------------------------------------------------------------------------

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # Discord's default upload limit
MAX_ATTACHMENT_PIXELS = 4096 * 4096  # decoded RGBA is 64 MiB: enough, and no decompression bomb
UNNAMED_TYPES = ("", "application/octet-stream")  # a client that did not say: the extension decides


def check_attachment(filename: str, content_type: str | None, size: int, width: int | None,
                     height: int | None, *, option: str = "init_image",
                     max_bytes: int = MAX_ATTACHMENT_BYTES,
                     max_pixels: int = MAX_ATTACHMENT_PIXELS) -> None:
    """Refuse an attachment (by Discord's metadata) that is not a usable image. Discord measures
    only the images it can show: a HEIC or TIFF comes without width and height, so the pixel
    cap is then left to the check of the downloaded bytes (`engine.media.stills`)."""
    shown = short_repr(filename)
    kind = (content_type or "").split(";")[0].strip().lower()
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if not (kind in CONTENT_TYPES or (kind in UNNAMED_TYPES and extension in EXTENSIONS)):
        what = kind if kind not in UNNAMED_TYPES else (f"a '{extension}' file" if extension else "not an image")
        raise CommandError(f"{option}: {shown} is {what}; attach a {FORMAT_LIST} image",
                           option, rule="attachment_type")
    if size > max_bytes:
        raise CommandError(f"{option}: {shown} is {size / 2**20:.1f} MiB; at most "
                           f"{max_bytes / 2**20:g} MiB — attach a smaller or more compressed "
                           f"image (e.g. JPEG)", option, rule="attachment_bytes")
    if width is None or height is None:
        return
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise CommandError(f"{option}: {shown} is {width}×{height} = {width * height:,} pixels; "
                           f"at most {max_pixels:,} — scale it down (DD resizes it to the "
                           f"render size anyway)", option, rule="attachment_pixels")
