"""The "Enlarge (GoBig)" message menu's Discord-free part: its form, the size GoBig starts from,
what it refuses and what the echo adds.

GoBig (engine/jobs/gobig.py) enlarges an image `gobig_scale`× and re-renders each tile with a
prompt, so the form asks for one ("what the image shows"), with optional settings as `/disco`'s
(gobig_scale, gobig_skip_ratio, steps, …) and, on a message of several images, which one
(`commands.message_image.image_field`). From a member's image (`gobig_init`: nothing is rendered
first) the job's width and height are the image's own, in DD's multiples of 64 (`gobig_base`):
the engine resizes the image to them and enlarges that. So a size is no setting here
(`check_no_size`), an image over the server's max_pixels is refused, as ⬆ refuses one, rather
than shrunk and enlarged back, and a side past DD's 64..4096 is refused or raised to 64.
On a result of the bot's the menu does what ⬆ does for that image (the job's settings, prompt
and the image's seed); `result_job_id` finds the job by the files a result carries. Discord-free.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from commands.errors import CommandError
from commands.message_image import (
    ENLARGE_MENU,
    SETTINGS_FIELD_MAX,
    SIZE_SETTINGS,
    AttachedFile,
    chosen_settings,
)
from commands.remix import PROMPT_FIELD_MAX, RemixField, check_fields
from engine.spec.fields import MAX_SIDE, MIN_SIDE
from engine.spec.gobig import gobig_tiles, output_size, tile_size, tile_skip_steps
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number

ENLARGE_FIELDS = (
    RemixField("prompt", "Prompt: what the image shows", PROMPT_FIELD_MAX,
               'e.g. "a lighthouse on a cliff at dawn, oil painting" (each tile is re-rendered with it)',
               paragraph=True),
    RemixField("settings", "Settings (optional, as /disco's settings:)", SETTINGS_FIELD_MAX,
               "e.g. gobig_scale=3; gobig_skip_ratio=0.5; steps=150", paragraph=True, required=False),
)
ENLARGE_FIELD_KEYS = tuple(field.key for field in ENLARGE_FIELDS)
ENLARGE_FORM_KIND = "enlarge_form"
ENLARGE_INSTEAD = "a message of your own"  # where else an image can be attached to right-click it
IMAGE_USE = "enlarge"  # the Image field's "which of the message's images to …"
# bot/stills.result_files: a result's settings, and its grid (`RESULT_GRID`) when it has several images.
_RESULT_FILE = re.compile(r"([0-9A-Z]{26})_(?:settings\.json|grid\.(?:png|jpg))")


def enlarge_form_values(values: dict[str, str]) -> tuple[str, Optional[str]]:
    """The submitted form's prompt and settings text (None when left empty)."""
    values = {key: values.get(key, "") for key in ENLARGE_FIELD_KEYS}
    check_fields(ENLARGE_FIELDS, values, rule="enlarge_field",
                 empty_fix="write what the image shows: GoBig re-renders each tile with it — or close the form")
    return values["prompt"].strip(), values["settings"].strip() or None


def check_no_size(prompt: str, settings: Optional[str]) -> None:
    """Refuse a size chosen in the form (width, height, size, --ar): GoBig starts from the image
    as it is, so its size is the image's and only gobig_scale makes the result larger."""
    chosen = sorted(chosen_settings(prompt, settings) & SIZE_SETTINGS)
    if chosen:
        raise CommandError(f"{ENLARGE_MENU}: {chosen[0]} is the image's own here (rule: enlarge_size); GoBig starts "
                           f"from the image as it is and makes it gobig_scale× larger — remove {chosen[0]}, and set "
                           f"gobig_scale=3 for a larger result", chosen[0], rule="enlarge_size")


def gobig_base(width: int, height: int, max_pixels: int, what: str) -> tuple[int, int]:
    """The width and height a GoBig job starts from for an image of `width`×`height` (`what`:
    which image, for the refusal): its own, down to DD's multiples of 64, at least 64 a side.
    Refused over the server's `max_pixels` (it would be shrunk to the limit, then enlarged back)
    and past DD's longest side."""
    if width * height > max_pixels:
        raise CommandError(f"{ENLARGE_MENU}: {what} is {width}×{height} = {width * height:,} pixels, over this "
                           f"server's {max_pixels:,} pixels per image (rule: max_pixels), and GoBig starts from the "
                           f"image at a size the server allows — enlarge a smaller image, or ask an admin to raise "
                           f"max_pixels", "message", rule="max_pixels")
    if max(width, height) > MAX_SIDE:
        raise CommandError(f"{ENLARGE_MENU}: {what} is {width}×{height}; DD renders at most {MAX_SIDE} pixels a side "
                           f"(rule: enlarge_side) — crop the image, or scale it down", "message", rule="enlarge_side")
    return max(MIN_SIDE, width // 64 * 64), max(MIN_SIDE, height // 64 * 64)


def result_job_id(files: Iterable[AttachedFile]) -> Optional[str]:
    """The job a result message of the bot's shows, by the files the poster attaches to it: the
    job's settings (`<job id>_settings.json`) or its grid (`<job id>_grid.png`). None for any
    other message (a result split over several messages names it in one of them only)."""
    for file in files:
        match = _RESULT_FILE.fullmatch(file.filename)
        if match:
            return match.group(1)
    return None


def enlarge_note(spec: RenderSpec, what: str, image: tuple[int, int]) -> str:
    """What the queued GoBig job will do, said under the echo: the image (`what`, `image`: its
    size as read) and the size it starts from, the enlarged size, the tiles and their steps, and
    that more tiles cost more GPU time."""
    across, down = image
    start = f"{across}×{down}"
    if (spec.width, spec.height) != image:
        start += f", taken as {spec.width}×{spec.height}: DD's sizes are multiples of 64"
        start += f", at least {MIN_SIDE}" if min(image) < MIN_SIDE else ""
    width, height = output_size(spec)
    tiles, (tile_width, tile_height) = len(gobig_tiles(spec)), tile_size(spec)
    steps = spec.steps - tile_skip_steps(spec)
    fewer = "gobig_scale=2 or a smaller image" if spec.gobig_scale > 2 else "a smaller image"
    return (f"Enlarging {what} ({start}) {spec.gobig_scale}× to {width}×{height}: {tiles} tile"
            f"{'s' if tiles != 1 else ''} of {tile_width}×{tile_height}, each re-rendered with the prompt over the "
            f"last {steps} of {spec.steps} steps (gobig_skip_ratio {format_number(spec.gobig_skip_ratio)}). More "
            f"tiles cost more GPU time; {fewer} makes fewer.")
