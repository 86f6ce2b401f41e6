"""`/disco-help`'s texts: a short guide to painting with the bot, and one setting explained
(what it does, the values it allows, its default, this server's, this channel's and the
member's own default, and how to type it).

Discord-free; the words about each setting come from engine.spec.setting_docs, so the help
says what the spec enforces. Every text fits one Discord message (2000 characters).
"""
from __future__ import annotations

from typing import Any, Mapping

from commands.echo import code_span
from commands.defaults import BOT_DEFAULTS, bot_baseline
from commands.job_options import LIMIT_OF, OPTION_FIELDS, JobLimits, limited_values
from commands.prompt_syntax import FLAG_ALIASES
from commands.sizes import SIZE_CHOICES
from engine.errors import SpecError
from engine.spec.fields import FIELD_DOCS
from engine.spec.setting_docs import SettingHelp, closest_setting, setting_help, setting_names

MESSAGE_LIMIT = 2000
# /animate's own options that are animation settings (others go in its settings: option).
ANIMATE_OPTIONS = {"zoom", "angle", "translation_x", "translation_y", "translation_z", "rotation_3d_x",
                   "rotation_3d_y", "rotation_3d_z", "fps"}
ANIMATE_RENAMED = {"max_frames": "frames", "turbo_mode": "turbo", "vr_mode": "vr",
                   "animation_mode": "mode", "video_init_path": "video"}


def guide_text() -> str:
    """How to paint: prompts, settings, images, the buttons and the other commands."""
    sizes = ", ".join(code_span(name) for name in list(SIZE_CHOICES)[:4])
    return "\n".join([
        "**Painting with Disco Diffusion**",
        '`/disco prompt:"a lighthouse in a storm:2 | yellow:-0.5"`: prompts are `text:weight` '
        "joined by `|` (Midjourney's `text::2` works too); a negative weight pushes away from "
        "a prompt, and `--no fog, text` lists what to avoid.",
        "**Settings**: flags after the prompt, `--steps 150 --ar 16:9 --seed 42 --cgs 8000` (short "
        "forms `--w --h --cgs --cutn --skip --n --model --sampler`; any setting's name works as a "
        'flag), or `settings:"eta=0.5; cut_ic_pow=4"`. The slash options win over both; '
        '`/disco-settings defaults:"steps=150"` keeps settings every job of yours starts from. '
        f"`size:` picks a shape ({sizes}, …); the small ones are fastest.",
        "**Images**: attach `init_image:` to start from a picture (set `skip_steps` to about half "
        "the steps), `image_prompt:` to steer by one, or `settings_file:` to load a DD settings file or a PNG the bot posted (its settings and "
        "seed; not a screenshot or a re-encoded JPEG/WebP copy). "
        "An image already posted: right-click its message → Apps → **Paint from this image**, "
        "**Describe image** or **Enlarge (GoBig)** (any image, a photo too, enlarged 2× tile by tile "
        "with a prompt of what it shows; more tiles take more GPU time).",
        "**Under each result**: buttons for a new seed, the same seed, ✏️ remix (change the "
        "prompt or settings in a form), the recipe, and for each image Vary, Animate and GoBig "
        "(enlarge it tile by tile).",
        "**More**: `/animate` (2D, 3D or a video), `/study` (a grid comparing settings), "
        "`/describe` (an image to a prompt), `/rerun`, `/queue`, `/cancel`, `/job show`, `/history`, `/preset`, "
        "`/disco-settings` (how you hear a job is done, your defaults), `/disco-info` (your GPU time and this "
        "server's limits).",
        "`/disco-help setting:` explains any Disco Diffusion setting, e.g. `cut_ic_pow`.",
    ])


def _flag_topics() -> dict[str, str]:
    """The prompt flags that are not a setting's own name, explained."""
    sizes = ", ".join(f"`{name}` {choice.width}×{choice.height}" for name, choice in SIZE_CHOICES.items())
    ratio = ("`--ar W:H` (or `--aspect`): that shape at about the pixel count of the size otherwise "
             "chosen, sides multiples of 64, e.g. `--ar 16:9` or `--ar 2:3`")
    return {"ar": ratio, "aspect": ratio, "aspect_ratio": ratio,
            "size": f"`size:` (or `--size NAME`) names a size: {sizes}",
            "no": "`--no fog, text`: what to avoid, as negative prompts that together weigh half "
                  "the positive ones (commas separate them)",
            "set": '`--set key=value`: any setting from the prompt, as `settings:"key=value"` does'}


def help_topics() -> list[tuple[str, str]]:
    """(value, label) of everything `setting:` explains: every setting, then the short flags
    ("--cgs → clip_guidance_scale") and the flags of their own (--ar, --no, --size, --set)."""
    flags = [(alias, f"--{alias} → {field}") for alias, field in FLAG_ALIASES.items()
             if alias != field and alias not in _flag_topics()]
    return ([(name, name) for name in setting_names()] + flags
            + [(name, f"--{name}") for name in _flag_topics()])


def setting_text(name: str, *, server_defaults: Mapping[str, Any] | None = None,
                 channel_defaults: Mapping[str, Any] | None = None,
                 own_defaults: Mapping[str, Any] | None = None, limits: JobLimits | None = None) -> str:
    """The setting `name` (or a prompt flag's short name, dashes allowed) explained; an unknown
    name is answered with the closest one. `limits`: the server's, said when they lower the
    default a job here starts from."""
    typed = name.strip().lstrip("-—").lower()
    if typed in _flag_topics():
        return _flag_topics()[typed]
    field = FLAG_ALIASES.get(typed)
    if field is not None and field != typed:
        return f"`--{typed}` is the short form of **{field}**.\n" + setting_text(
            field, server_defaults=server_defaults, channel_defaults=channel_defaults,
            own_defaults=own_defaults, limits=limits)
    found = setting_help(typed)
    if not found:
        guess = closest_setting(name)
        hint = f" Did you mean {code_span(guess)}?" if guess else ""
        return (f"There is no setting called {code_span(name[:60])}.{hint} Settings are Disco "
                f"Diffusion 5.x's names ({len(setting_names())} of them); type a few letters in "
                "`setting:` to pick one.")
    levels = (("Default in this server", server_defaults or {}),
              ("Default in this channel", channel_defaults or {}),
              ("Your default (`/disco-settings`)", own_defaults or {}))
    lowered = _lowered(levels, limits)
    text = "\n\n".join(_one(entry, levels, lowered) for entry in found)
    return text[:MESSAGE_LIMIT]


def _lowered(levels: tuple[tuple[str, Mapping[str, Any]], ...], limits: JobLimits | None) -> dict[str, Any]:
    """What the server's limits make of the defaults a job here starts from ({} without limits,
    or when the defaults do not build: a job says why)."""
    if limits is None:
        return {}
    try:
        spec = bot_baseline({key: value for _, defaults in levels for key, value in defaults.items()})
    except SpecError:
        return {}
    return limited_values(spec, limits)


def _one(entry: SettingHelp, levels: tuple[tuple[str, Mapping[str, Any]], ...], lowered: dict[str, Any]) -> str:
    """One setting explained; `levels`: the defaults that hold here, lowest first (the last wins);
    `lowered`: what the server's limits make of them."""
    kind = "animation setting" if entry.animation else "setting"
    lines = [f"**{entry.name}** ({kind}): {entry.meaning}",
             f"Allowed: {entry.allowed}", f"Default: {_default(entry)}"]
    if not entry.animation:  # defaults hold still settings
        for where, defaults in levels:
            if entry.name in defaults:
                lines.append(f"{where}: {code_span(str(defaults[entry.name]))}")
        if entry.name in lowered:
            lines.append(f"Here, this server's {LIMIT_OF[entry.name]} lowers it to "
                         f"{code_span(str(lowered[entry.name]))}")
    lines.append(f"Set it: {_how_to_type(entry)}")
    return "\n".join(lines)


def _default(entry: SettingHelp) -> str:
    if not entry.animation and entry.name in BOT_DEFAULTS:
        return f"{code_span(str(BOT_DEFAULTS[entry.name]))} here (Disco Diffusion's: {code_span(entry.default)})"
    return code_span(entry.default)


def _how_to_type(entry: SettingHelp) -> str:
    name = entry.name
    example = f"{name}={_example(entry)}"
    if entry.animation:
        option = ANIMATE_RENAMED.get(name, name if name in ANIMATE_OPTIONS else None)
        ways = [f"`/animate {option}:`"] if option else []
        if name not in ("video_init_path", "init_frame"):
            ways.append(f"`/animate settings:\"{example}\"`")
        else:
            ways.append("an attachment" if name == "video_init_path" else "the Animate button under a still")
        return ", or ".join(ways)
    if name in ("init_image", "image_prompts"):
        option = "init_image" if name == "init_image" else "image_prompt"
        return f"attach the image with `/disco {option}:`"
    if name == "text_prompts":
        return "`/disco prompt:`"
    ways = [f"`/disco {option}:`" for option, field in OPTION_FIELDS.items() if field == name]
    flags = [alias for alias, field in FLAG_ALIASES.items() if field == name and alias != name]
    flag = f"--{min(flags, key=len)}" if flags else f"--{name}"
    ways.append(f"`{flag} {_example(entry)}` after the prompt")
    ways.append(f"`settings:\"{example}\"`")
    return ", ".join(ways[:-1]) + ", or " + ways[-1]


_EXAMPLES = {"n_batches": "2"}  # DD's 50 images would only be lowered to the server's cap


def _example(entry: SettingHelp) -> str:
    if not entry.animation and entry.name in _EXAMPLES:
        return _EXAMPLES[entry.name]
    if not entry.animation and entry.name in FIELD_DOCS:
        return FIELD_DOCS[entry.name][2]
    return entry.default
