"""The message context menus (right-click a message → Apps): which attachment of the message they
use, what they refuse, and the "Paint from this image" form.

Only attachments are read: an image that is only linked, or shown in an embed, is a URL anyone
could have written, and the bot fetches no URL a member chose (SSRF). The first attachment whose
Discord metadata says it is a still image (`engine.media.still_formats`: the same rule as
`/disco`'s `init_image`) is used (on a result of the bot's, the first after the grid of its
images, `RESULT_GRID`); the bytes are then checked like any attachment
(bot/attachments.save_image). The form reuses the ✏️ remix form's field description
(`commands.remix.RemixField`) and its checks; `chosen_settings` and `image_shape` decide what the
painting takes from the image when the member did not choose it (skip_steps, the shape), and
`paint_note` says so under the echo; on a message of several still images the form's Image
field (`image_field`, `image_number`) picks one. `MenuForm` is what a menu keeps for its form's
submit (where, by whom, and the images as Discord sent them), as JSON: the paint form's and the
"Enlarge (GoBig)" form's (commands/enlarge.py); `form_unknown`, `form_elsewhere`,
`form_of_another` and `image_not_downloaded` are the submits' refusals. Discord-free.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Iterable, Optional

from commands.errors import CommandError
from commands.job_options import UNNAMED_TYPES
from commands.prompt_syntax import parse_prompt_text
from commands.remix import PROMPT_FIELD_MAX, RemixField, check_fields
from engine.errors import SpecError
from engine.media.still_formats import CONTENT_TYPES, EXTENSIONS, FORMAT_LIST
from engine.spec.overrides import parse_set_options

DESCRIBE_MENU = "Describe image"          # ≤ 32 characters (Discord's cap for a menu's name)
PAINT_MENU = "Paint from this image"
ENLARGE_MENU = "Enlarge (GoBig)"
MENU_NAMES = (DESCRIBE_MENU, PAINT_MENU, ENLARGE_MENU)
SETTINGS_FIELD_MAX = 4000  # the same cap as /disco's settings option (bot.params.Settings)
PRESET_FIELD_MAX = 32      # storage.presets: names of 1-32 characters

PAINT_FIELDS = (
    RemixField("prompt", "Prompt", PROMPT_FIELD_MAX, 'e.g. "a lighthouse at dawn:2 | oil painting"',
               paragraph=True),
    RemixField("settings", "Settings (optional, as /disco's settings:)", SETTINGS_FIELD_MAX,
               "e.g. steps=150; skip_steps=50 (empty: half of the steps are skipped)", paragraph=True,
               required=False),
    RemixField("preset", "Preset (optional: a name from /preset list)", PRESET_FIELD_MAX,
               "e.g. misty-forest: its settings, under the ones above", required=False),
)
PAINT_FIELD_KEYS = tuple(field.key for field in PAINT_FIELDS)

ANOTHER_IN_FORM = "the form's Image field picks another"  # Picked.note's hint in the forms' echoes

@dataclass(frozen=True)
class AttachedFile:
    """What Discord says of one attachment before a byte is downloaded."""

    filename: str
    content_type: Optional[str]


@dataclass(frozen=True)
class Picked:
    """The attachment a menu uses: its index among the message's `count` attachments, and which
    of the message's `images` still images it is (`number`, from 1)."""

    index: int
    count: int
    filename: str
    past_grid: bool = False  # a result of the bot's: its grid of the images was passed over
    number: int = 1
    images: int = 1

    def note(self, another: str) -> str:
        """Which attachment was used, when the message has several ("" when it has one).
        `another`: how to use another of its images, said when it has several."""
        if self.count == 1:
            return ""
        image = "image" if self.past_grid else "still image"
        which = (f"first {image}" if self.number == 1 else f"{image} number {self.number}")
        which = f"the result's {which}, not the grid of them" if self.past_grid else f"the message's {which}"
        hint = f"; {another}" if self.images > 1 else ""
        return f"Used attachment {self.index + 1} of {self.count}, {self.filename[:80]} ({which}{hint})."


def is_still_image(file: AttachedFile) -> bool:
    """Whether the metadata names a still-image format, as `check_attachment` reads it: the
    content type, or the extension when the client named no type."""
    kind = (file.content_type or "").split(";")[0].strip().lower()
    extension = "." + file.filename.rsplit(".", 1)[-1].lower() if "." in file.filename else ""
    return kind in CONTENT_TYPES or (kind in UNNAMED_TYPES and extension in EXTENSIONS)


# The grid a result of the bot's with several images shows first (bot/stills.image_grid: the
# job's id, then _grid): an overview with their numbers and the job's header, not one painting.
RESULT_GRID = re.compile(r"[0-9A-Z]{26}_grid\.(?:png|jpg)")


def still_images(files: list[AttachedFile], *, by_bot: bool = False) -> list[int]:
    """The indices of the message's still-image attachments a menu may use: on a result of the
    bot's (`by_bot`), its grid is left out when the images it shows are attached too."""
    images = [index for index, file in enumerate(files) if is_still_image(file)]
    grids = [index for index in images if by_bot and RESULT_GRID.fullmatch(files[index].filename)]
    return [index for index in images if index not in grids] if len(images) > len(grids) else images


def pick_still_image(files: Iterable[AttachedFile], menu: str, option: str, *, by_bot: bool = False) -> Picked:
    """The message's first still-image attachment (on a result of the bot's, `by_bot`, the first
    image after its grid); a refusal naming the rule and the fix when it has none. `option`: the
    slash command option that takes an attached image instead."""
    files = list(files)
    images = still_images(files, by_bot=by_bot)
    if images:
        past_grid = any(is_still_image(file) and index not in images for index, file in enumerate(files))
        return Picked(images[0], len(files), files[images[0]].filename, past_grid, 1, len(images))
    if not files:
        raise CommandError(f"{menu}: this message has no attached image (rule: menu_attachments_only); only "
                           f"images attached to a message are read, not links or embeds — attach the image to "
                           f"{option} instead", "message", rule="menu_attachments_only")
    shown = ", ".join(f"{f.filename[:60]} ({(f.content_type or 'no type').split(';')[0]})" for f in files[:3])
    raise CommandError(f"{menu}: no attachment of this message is a still image ({shown}; rule: "
                       f"menu_still_image); it reads a {FORMAT_LIST} image, not a video or another file — "
                       f"right-click a message with one, or attach one to {option}", "message",
                       rule="menu_still_image")


def paint_form_values(values: dict[str, str]) -> tuple[str, Optional[str], Optional[str]]:
    """The submitted paint form: its prompt, its settings text and its preset's name (None when
    left empty)."""
    values = {key: values.get(key, "") for key in PAINT_FIELD_KEYS}
    check_fields(PAINT_FIELDS, values, empty_fix="fill it in, or close the form to paint nothing",
                 rule="paint_field")
    return values["prompt"].strip(), values["settings"].strip() or None, values["preset"].strip() or None


def chosen_settings(prompt: str, settings: Optional[str], preset: Iterable[str] = ()) -> set[str]:
    """The settings the member chose in the form: flags in the prompt (`--skip 50`, `--ar 3:4`),
    keys in the settings and in the preset they named (`preset`: its keys). Text that does not
    parse chose nothing: the build refuses it with its own words."""
    try:
        return set(parse_prompt_text(prompt).flags) | set(parse_set_options(settings)) | set(preset)
    except SpecError:  # CommandError is a SpecError
        return set(preset)


SIZE_SETTINGS = frozenset({"width", "height", "size", "aspect_ratio"})


def image_shape(chosen: set[str], width: int, height: int) -> Optional[tuple[int, int]]:
    """The image's width and height for `DiscoOptions.image_shape` when the member chose no size:
    DD stretches the init image to the render's size, so a painting shaped like it keeps its
    proportions. None when a size was chosen."""
    return None if chosen & SIZE_SETTINGS or width <= 0 or height <= 0 else (width, height)


PAINT_FORM_KIND = "paint_form"
FORM_MAX_BYTES = 65536  # ten attachments' metadata (URLs, long names), a prompt and a few ids: far less
JOB_ID = re.compile(r"[0-9A-Z]{26}")


@dataclass(frozen=True)
class MenuForm:
    """What a menu form's submit needs from the click that opened it: where and by whom it was
    opened, and the picked attachment as Discord sent it in the menu's interaction (its fields
    as `bot.attachments.KeptAttachment.to_dict` writes them). Kept as JSON, so a submit after a
    restart reads it back. `kind` tells the menus' forms apart; the enlarge form on a result of
    the bot's also keeps the result's job and the prompt it showed first (`job_id`, `shown`)."""

    guild_id: int
    channel_id: int
    message_id: int
    user_id: int
    attachment: dict
    picked: Picked
    # The message's other still images the form offers (its Image field): (index, attachment).
    more: tuple[tuple[int, dict], ...] = ()
    kind: str = PAINT_FORM_KIND
    job_id: Optional[str] = None
    shown: str = ""

    def to_json(self) -> bytes:
        job = {"job": self.job_id, "shown": self.shown} if self.job_id else {}
        return json.dumps({"kind": self.kind, "guild": self.guild_id, "channel": self.channel_id,
                           "message": self.message_id, "user": self.user_id, "attachment": self.attachment,
                           "index": self.picked.index, "count": self.picked.count,
                           "past_grid": self.picked.past_grid, "more": [list(pair) for pair in self.more], **job},
                          sort_keys=True).encode()

    def choose(self, number: int) -> tuple[dict, Picked]:
        """Still image `number` (from 1, checked by `image_number`) and which it is."""
        index, attachment = ((self.picked.index, self.attachment) if number == 1 else self.more[number - 2])
        return attachment, replace(self.picked, index=index, filename=str(attachment.get("filename")),
                                   number=number, images=1 + len(self.more))

    @classmethod
    def from_json(cls, data: bytes, menu: str, kind: str = PAINT_FORM_KIND) -> "MenuForm":
        """The form of `kind` kept by `to_json`; `form_unknown` for anything else."""
        try:
            if len(data) > FORM_MAX_BYTES:
                raise ValueError("too large for a menu's form")
            kept = json.loads(data)
            if not isinstance(kept, dict) or kept.get("kind") != kind:
                raise ValueError("not a form of this menu")
            ids = [kept[key] for key in ("guild", "channel", "message", "user", "index", "count")]
            attachment = kept["attachment"]
            if not all(type(value) is int for value in ids) or not isinstance(attachment, dict):
                raise ValueError("a field of the wrong type")
            filename = attachment.get("filename")
            past_grid = kept.get("past_grid", False)  # absent from a form kept before it was
            if not isinstance(filename, str) or type(past_grid) is not bool:
                raise ValueError("an attachment without a name")
            more = tuple(_other_image(pair) for pair in kept.get("more", []))[:MAX_IMAGES - 1]
            job_id, shown = kept.get("job"), kept.get("shown", "")
            if not (job_id is None or isinstance(job_id, str) and JOB_ID.fullmatch(job_id)) \
                    or not isinstance(shown, str):
                raise ValueError("not a job of the bot's")
        except (ValueError, KeyError, TypeError):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise form_unknown(menu) from None
        guild_id, channel_id, message_id, user_id, index, count = ids
        return cls(guild_id, channel_id, message_id, user_id, attachment,
                   Picked(index, count, filename, past_grid, 1, 1 + len(more)), more, kind, job_id, shown)


MAX_IMAGES = 10  # Discord's attachments per message


def _other_image(pair: object) -> tuple[int, dict]:
    """One (index, attachment) of a kept form's other images; ValueError when it is none."""
    if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int and isinstance(pair[1], dict)
            and isinstance(pair[1].get("filename"), str)):
        raise ValueError("not one of the message's images")
    return pair[0], pair[1]


def image_field(images: int, use: str = "start from") -> RemixField:
    """The form's Image field, for a message with several still images (1 to `images`); `use`:
    what the menu does with the one picked."""
    return RemixField("image", f"Image: 1 to {images} (empty: 1)", 2,
                      f"which of the message's images to {use}, counted in their order", required=False)


def image_number(text: str, images: int, menu: str, rule: str = "paint_image_number") -> int:
    """The Image field's number (1 when left empty); a refusal naming the bound otherwise."""
    if not text.strip():
        return 1
    if re.fullmatch(r"[0-9]{1,2}", text.strip()) and 1 <= int(text.strip()) <= images:
        return int(text.strip())
    raise CommandError(f"{menu}: image {text.strip()[:10]!r} is not one of this message's {images} images (rule: "
                       f"{rule}) — type 1 to {images}, or leave it empty for the first", "image", rule=rule)


def form_unknown(menu: str) -> CommandError:
    """A submit whose form the bot does not know (kept a day, then swept; or a forged custom_id)."""
    return CommandError(f"{menu}: this form is no longer known to the bot (rule: menu_form_unknown); right-click "
                        f"the message again to open a new one", "message", rule="menu_form_unknown")


def form_elsewhere(menu: str) -> CommandError:
    """A submit from another server or channel than the form was opened in (a forged form)."""
    return CommandError(f"{menu}: this form belongs to a message of another channel (rule: menu_same_channel); "
                        f"right-click the message again in its own channel", "message", rule="menu_same_channel")


def form_of_another(menu: str) -> CommandError:
    """A submit by another member than the one who opened the form (a forged form)."""
    return CommandError(f"{menu}: this form was opened by another member (rule: menu_own_form); right-click "
                        f"the message yourself to open your own", "message", rule="menu_own_form")


def image_not_downloaded(menu: str, filename: str, status: Optional[int], why: str,
                         instead: str = "attach it to /disco init_image:") -> CommandError:
    """The image the form was opened on could not be downloaded when it was sent. A 404 is a
    file Discord no longer serves: its message was deleted, or the file removed from it.
    `instead`: the other way to give the image."""
    if status == 404:
        return CommandError(f"{menu}: {filename[:80]} is no longer on Discord: its message was deleted, or the "
                            f"image removed from it, after the form was opened (rule: menu_message_gone); "
                            f"right-click the image where it is posted now, or {instead}",
                            "message", rule="menu_message_gone")
    return CommandError(f"{menu}: {filename[:80]} could not be downloaded from Discord ({why}; rule: "
                        f"attachment_download); right-click the message again in a moment, or {instead}",
                        "message", rule="attachment_download")


def paint_note(filename: str, skip_steps: int, steps: int, *, skip_chosen: bool) -> str:
    """What "Paint from this image" started from, said under the echo (its shape is the echo's
    note, from `build_job`)."""
    how = ("as you set it" if skip_chosen else
           "half of them, so the image's layout stays; fewer skipped paints more freely — set skip_steps= "
           "in the form's settings")
    return f"Started from {filename[:80]}: skip_steps {skip_steps} of {steps} steps ({how})."


def with_notes(echo: str, *notes: str, limit: int = 2000) -> str:
    """The echo with `notes` (the empty ones left out) on lines after it, within `limit`: the
    echo is cut, not the notes."""
    tail = "".join(f"\n{note}" for note in notes if note)
    if len(echo) + len(tail) <= limit:
        return echo + tail
    return echo[:max(0, limit - len(tail) - 2)] + "…" + tail
