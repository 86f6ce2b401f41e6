"""The message context menus (right-click a message → Apps): which attachment of the message they
use, what they refuse, and the "Paint from this image" form.

Only attachments are read: an image that is only linked, or shown in an embed, is a URL anyone
could have written, and the bot fetches no URL a member chose (SSRF). The first attachment whose
Discord metadata says it is a still image (`engine.media.still_formats`: the same rule as
`/disco`'s `init_image`) is used; the bytes are then checked like any attachment
(bot/attachments.save_image). The form reuses the ✏️ remix form's field description
(`commands.remix.RemixField`) and its checks; `chosen_settings` and `shape_flag` decide what the
painting takes from the image when the member did not choose it (skip_steps, the shape), and
`paint_note` says so under the echo. Discord-free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

from commands.errors import CommandError
from commands.job_options import UNNAMED_TYPES
from commands.prompt_syntax import parse_prompt_text
from commands.remix import PROMPT_FIELD_MAX, RemixField, check_fields
from commands.sizes import MAX_RATIO
from engine.errors import SpecError
from engine.media.still_formats import CONTENT_TYPES, EXTENSIONS, FORMAT_LIST
from engine.spec.overrides import parse_set_options

DESCRIBE_MENU = "Describe image"          # ≤ 32 characters (Discord's cap for a menu's name)
PAINT_MENU = "Paint from this image"
MENU_NAMES = (DESCRIBE_MENU, PAINT_MENU)
SETTINGS_FIELD_MAX = 4000  # the same cap as /disco's settings option (bot.params.Settings)

PAINT_FIELDS = (
    RemixField("prompt", "Prompt", PROMPT_FIELD_MAX, 'e.g. "a lighthouse at dawn:2 | oil painting"',
               paragraph=True),
    RemixField("settings", "Settings (optional, as /disco's settings:)", SETTINGS_FIELD_MAX,
               "e.g. steps=150; skip_steps=50 (empty: half of the steps are skipped)", paragraph=True,
               required=False),
)
PAINT_FIELD_KEYS = tuple(field.key for field in PAINT_FIELDS)


@dataclass(frozen=True)
class AttachedFile:
    """What Discord says of one attachment before a byte is downloaded."""

    filename: str
    content_type: Optional[str]


@dataclass(frozen=True)
class Picked:
    """The attachment a menu uses: its index among the message's `count` attachments."""

    index: int
    count: int
    filename: str

    def note(self) -> str:
        """Which attachment was used, when the message has several ("" when it has one)."""
        if self.count == 1:
            return ""
        return (f"Used attachment {self.index + 1} of {self.count}, {self.filename[:80]} (the message's first "
                f"still image).")


def is_still_image(file: AttachedFile) -> bool:
    """Whether the metadata names a still-image format, as `check_attachment` reads it: the
    content type, or the extension when the client named no type."""
    kind = (file.content_type or "").split(";")[0].strip().lower()
    extension = "." + file.filename.rsplit(".", 1)[-1].lower() if "." in file.filename else ""
    return kind in CONTENT_TYPES or (kind in UNNAMED_TYPES and extension in EXTENSIONS)


def pick_still_image(files: Iterable[AttachedFile], menu: str, option: str) -> Picked:
    """The message's first still-image attachment; a refusal naming the rule and the fix when it
    has none. `option`: the slash command option that takes an attached image instead."""
    files = list(files)
    if not files:
        raise CommandError(f"{menu}: this message has no attached image (rule: menu_attachments_only); only "
                           f"images attached to a message are read, not links or embeds — attach the image to "
                           f"{option} instead", "message", rule="menu_attachments_only")
    for index, file in enumerate(files):
        if is_still_image(file):
            return Picked(index, len(files), file.filename)
    shown = ", ".join(f"{f.filename[:60]} ({(f.content_type or 'no type').split(';')[0]})" for f in files[:3])
    raise CommandError(f"{menu}: no attachment of this message is a still image ({shown}; rule: "
                       f"menu_still_image); it reads a {FORMAT_LIST} image, not a video or another file — "
                       f"right-click a message with one, or attach one to {option}", "message",
                       rule="menu_still_image")


def paint_form_values(values: dict[str, str]) -> tuple[str, Optional[str]]:
    """The submitted paint form: its prompt and its settings text (None when left empty)."""
    values = {key: values.get(key, "") for key in PAINT_FIELD_KEYS}
    check_fields(PAINT_FIELDS, values, empty_fix="fill it in, or close the form to paint nothing",
                 rule="paint_field")
    return values["prompt"].strip(), values["settings"].strip() or None


def chosen_settings(prompt: str, settings: Optional[str]) -> set[str]:
    """The settings the member chose in the form: flags in the prompt (`--skip 50`, `--ar 3:4`)
    and keys in the settings. Text that does not parse chose nothing: the build refuses it with
    its own words."""
    try:
        return set(parse_prompt_text(prompt).flags) | set(parse_set_options(settings))
    except SpecError:  # CommandError is a SpecError
        return set()


SIZE_SETTINGS = frozenset({"width", "height", "size", "aspect_ratio"})


def shape_flag(chosen: set[str], width: Optional[int], height: Optional[int]) -> str:
    """`--ar W:H` of the image, to add to the prompt when the member chose no size: DD stretches
    the init image to the render's size, so a painting shaped like it keeps its proportions
    (within --ar's bounds). "" when a size was chosen or Discord did not measure the image."""
    if chosen & SIZE_SETTINGS or not width or not height or width <= 0 or height <= 0:
        return ""
    if width > MAX_RATIO * height:
        return f"--ar {MAX_RATIO:g}:1"
    if height > MAX_RATIO * width:
        return f"--ar 1:{MAX_RATIO:g}"
    common = math.gcd(width, height)
    return f"--ar {width // common}:{height // common}"


def cannot_read_history(menu: str) -> CommandError:
    """The bot may not read the channel's messages, which the paint form needs on its submit."""
    return CommandError(f"{menu}: the bot cannot read this channel's messages, and the form reads the image's "
                        f"message again when it is sent (rule: bot_read_history); ask a server admin to give the "
                        f"bot View Channel and Read Message History here, or attach the image to /disco "
                        f"init_image:", "message", rule="bot_read_history")


def message_gone(menu: str) -> CommandError:
    """The message was deleted (or its channel gone) between the menu and the form's submit."""
    return CommandError(f"{menu}: the message with the image was deleted before the form was sent (rule: "
                        f"menu_message_gone); right-click the image where it is posted now, or attach it to "
                        f"/disco init_image:", "message", rule="menu_message_gone")


def form_elsewhere(menu: str) -> CommandError:
    """A submit that names another channel's message than the one it is sent from (a forged form)."""
    return CommandError(f"{menu}: this form belongs to a message of another channel (rule: menu_same_channel); "
                        f"right-click the message again in its own channel", "message", rule="menu_same_channel")


def paint_note(filename: str, skip_steps: int, steps: int, *, skip_chosen: bool, shape: str) -> str:
    """What "Paint from this image" started from, said under the echo."""
    how = ("as you set it" if skip_chosen else
           "half of them, so the image's layout stays; fewer skipped paints more freely — set skip_steps= "
           "in the form's settings")
    shaped = f"; shaped like the image ({shape})" if shape else ""
    return f"Started from {filename[:80]}: skip_steps {skip_steps} of {steps} steps ({how}){shaped}."


def with_notes(echo: str, *notes: str, limit: int = 2000) -> str:
    """The echo with `notes` (the empty ones left out) on lines after it, within `limit`: the
    echo is cut, not the notes."""
    tail = "".join(f"\n{note}" for note in notes if note)
    if len(echo) + len(tail) <= limit:
        return echo + tail
    return echo[:max(0, limit - len(tail) - 2)] + "…" + tail
