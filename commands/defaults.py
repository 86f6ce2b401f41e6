"""The defaults every job starts from, lowest first: DD's, the bot's (`BOT_DEFAULTS`), the
server's, the channel's, then the member's own (`/disco-settings defaults:`). `build_job`
(commands/job_options.py) puts the job's own sources over them: a preset the member picks, a
settings file, typed settings, prompt flags and slash options.

Here: the baseline the defaults make (what the echo's settings and the 📋 recipe are compared
with), their re-check when a job reads them (they may have been stored before a rule or an
upgrade that no longer takes them: dropped with a note, the job goes on without them), and
the notes saying which level set what. The member's defaults sit under any preset because
picking a preset is a choice for this one job, while defaults are a standing baseline.
"""
from __future__ import annotations

import json
from typing import Any

from commands.errors import CommandError
from commands.prompt_syntax import ATTACHMENT_ONLY
from engine.errors import SpecError
from engine.spec.render import RenderSpec
from engine.spec.schedules import short_repr

BOT_DEFAULTS: dict[str, Any] = {"n_batches": 1}
SERVER_DEFAULTS, CHANNEL_DEFAULTS = "the server defaults", "this channel's defaults"
OWN_DEFAULTS = "your defaults"
# Plain text, no code spans: refusals and notes escape markdown.
OWN_DEFAULTS_FIX = ('change them with /disco-settings defaults:"key=value", or remove one with '
                    '/disco-settings reset:')
# Settings no default may hold (server, channel or member), and why (`parse_defaults` refuses
# them when set; one stored before is dropped with this note).
NOT_A_DEFAULT = {"seed": "every job would paint the same noise, and 🔄 New seed or /rerun would "
                         "paint it again"}
IMAGES_NOTE = "images come from attachments only"
# Settings a member's own defaults may not hold: every /disco, /animate and /study takes a typed
# prompt, which replaces text_prompts from any default, so a style kept there would never paint.
NOT_OWN_DEFAULT = {"text_prompts": 'the prompt you type replaces it in every job; write the style into '
                                   'your prompt instead, e.g. "a lighthouse | oil painting:0.5"'}


def plain_settings(values: dict[str, Any] | str | None, label: str) -> dict[str, Any]:
    """A settings dict (or spec JSON text) without schema_version."""
    if values is None:
        return {}
    if isinstance(values, str):
        try:
            values = json.loads(values)
        except (ValueError, RecursionError):
            raise CommandError(f"{label} is not readable JSON; an admin needs to save it again",
                               rule="stored_settings") from None
    if not isinstance(values, dict):
        raise CommandError(f"{label} is not a settings mapping; an admin needs to save it again",
                           rule="stored_settings")
    return {k: v for k, v in values.items() if k != "schema_version"}


def bot_baseline(defaults: dict[str, Any] | None = None) -> RenderSpec:
    """The spec a job gets when the user sets nothing: DD + `BOT_DEFAULTS` + `defaults`."""
    return RenderSpec.from_dict({**BOT_DEFAULTS, **plain_settings(defaults, "defaults")})


def baseline_for(spec: RenderSpec, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `spec` is compared with to say what the user chose: the baseline, plus what
    choosing spec's diffusion model alone brings (its DD cut schedules and size)."""
    base = bot_baseline(defaults)
    if spec.diffusion_model == base.diffusion_model:
        return base.to_dict()
    return {**base.replace(diffusion_model=spec.diffusion_model).to_dict(),
            "diffusion_model": base.diffusion_model}


def usable_defaults(defaults: dict[str, Any] | None, label: str, notes: list[str]) -> dict[str, Any] | None:
    """Server or channel defaults less what cannot be a default (`NOT_A_DEFAULT`, stored before
    it was refused), each one dropped with a note."""
    dropped = sorted(NOT_A_DEFAULT.keys() & defaults.keys()) if isinstance(defaults, dict) else []
    notes.extend(f"{key} from {label} ignored: {NOT_A_DEFAULT[key]}" for key in dropped)
    return {key: value for key, value in defaults.items() if key not in dropped} if dropped else defaults


def usable_own_defaults(stored: dict[str, Any] | None, notes: list[str]) -> dict[str, Any]:
    """A member's stored defaults, checked again as a job reads them: each setting alone (a
    setting renamed or a value out of range since an upgrade, a rule added since), then all
    together. What fails is dropped with a note saying why and how to change them."""
    kept: dict[str, Any] = {}
    for key, value in (stored or {}).items():
        why = _not_a_default(key)
        if why:
            notes.append(f"{key} from {OWN_DEFAULTS} ignored: {why}; {OWN_DEFAULTS_FIX}")
        else:
            kept[key] = value
    if not kept or _builds(kept):  # the usual case: one spec built, not one per setting
        return kept
    for key, value in list(kept.items()):
        try:
            bot_baseline({key: value})
        except SpecError as err:
            notes.append(f"{key} from {OWN_DEFAULTS} ignored: {err}; {OWN_DEFAULTS_FIX}")
            del kept[key]
    while kept:  # fine alone, not together (skip_steps over a lowered steps): drop the one named
        try:
            bot_baseline(kept)
            break
        except SpecError as err:
            for key in [err.param] if err.param in kept else sorted(kept):
                notes.append(f"{key} from {OWN_DEFAULTS} ignored: {err}; {OWN_DEFAULTS_FIX}")
                del kept[key]
    return kept


def _builds(values: dict[str, Any]) -> bool:
    try:
        bot_baseline(values)
    except SpecError:
        return False
    return True


def _not_a_default(key: str) -> str | None:
    """Why a stored setting's name cannot be a default (any more); None when it can."""
    if key in NOT_A_DEFAULT or key in NOT_OWN_DEFAULT:
        return NOT_A_DEFAULT.get(key) or NOT_OWN_DEFAULT[key]
    if key in ATTACHMENT_ONLY:
        return IMAGES_NOTE
    if key not in RenderSpec.model_fields or key == "schema_version":
        return "not a setting of this version"
    return None


def defaults_used(values: dict[str, Any], origin: dict[str, str]) -> list[str]:
    """One note per level of defaults that set something the user left alone (`origin`: who
    set each of the merged `values`)."""
    notes = []
    for label in (SERVER_DEFAULTS, CHANNEL_DEFAULTS, OWN_DEFAULTS):
        keys = sorted(key for key, where in origin.items() if where == label)
        if keys:
            fix = "; /disco-settings changes them" if label == OWN_DEFAULTS else ""
            notes.append(f"from {label}: " + ", ".join(
                f"{key}={_default_shown(values[key])}" for key in keys)
                + f" (your options override them{fix})")
    return notes


def _default_shown(value: Any) -> str:
    """A default's value in its note: a short list of names or numbers written out as the admin
    set it (clip_models=ViT-B-32::openai,RN50::openai), anything else as `short_repr` says it
    (a schedule is "a list of 1000 items")."""
    if (isinstance(value, (list, tuple)) and 0 < len(value) <= 8
            and all(isinstance(v, (str, int, float)) for v in value)):
        text = ",".join(str(v) for v in value)
        return text if len(text) <= 100 else text[:99] + "…"
    return short_repr(value)


def defaults_here(server: dict[str, Any], own: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults a member's job starts from in a channel, as one dict for a baseline: the
    server's and channel's (`server`, `GuildSettings.defaults_for`), the member's usable ones over
    them. When the member's do not make a valid job with the server's, the server's alone (the
    job itself would be refused, naming the setting)."""
    combined = {**server, **usable_own_defaults(own, [])}
    try:
        bot_baseline(combined)
    except SpecError:
        return dict(server)
    return combined
