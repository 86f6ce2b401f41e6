"""A server's rules that admins set, checked and shown: render defaults (the server's, and a
channel's over them), the diffusion and CLIP models it allows.

Defaults are typed like `/disco`'s `settings` option ("steps=150; eta=0.5"), checked by building
the spec they give (so a bad value is refused when it is set, not on every later job), and never
hold image paths (images come from attachments only). Allowed models are checked on the final
spec of every job at the one door into the queue (`check_allowed_models`, called by
`bot.queueing.enqueue_spec` and `disco jobs submit`), so a preset, a re-run, a settings file or a
study axis cannot slip a forbidden model in.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from commands.defaults import NOT_A_DEFAULT, bot_baseline
from commands.echo import code_span
from commands.errors import CommandError
from commands.gpu_memory import render_specs
from commands.job_options import JobLimits, limit_adjustments
from commands.prompt_syntax import ATTACHMENT_ONLY, resolve_model_name
from engine.errors import SpecError
from engine.spec.animation import AnimationSpec
from engine.spec.fields import (
    CLIP_MODELS,
    Invalid,
    check_choice,
    check_clip_models,
    choices_of,
    closest_name,
)
from engine.spec.overrides import parse_set_options
from engine.spec.render import RenderSpec
from engine.spec.study import StudySpec

MAX_ALLOWED_MODELS = 64  # storage.guilds.MAX_ALLOWED_MODELS
EVERY = "every"          # what an admin types to allow every model again
VALUE_CHARS = 60         # a longer default value is shortened when shown
DEFAULTS_CHARS = 500     # one scope's defaults as shown


def parse_defaults(text: str) -> dict[str, Any]:
    """Server or channel defaults from "key=value; key=value", checked by building their spec."""
    try:
        values = parse_set_options(text)
    except SpecError as err:
        if err.param in AnimationSpec.model_fields and err.param not in RenderSpec.model_fields:
            raise CommandError(f"defaults: {err.param} is an animation setting; defaults hold settings every "
                               f"job shares (stills, animations, studies), so it cannot be one (rule: defaults) "
                               f"— type it in /animate settings: each time", err.param, rule="defaults") from None
        raise CommandError(f"defaults: {err}", err.param, rule="defaults") from None
    if not values:
        raise CommandError("defaults: no setting given (rule: defaults); type them as key=value, e.g. "
                           "\"steps=150; eta=0.5\"",
                           rule="defaults")
    images = [key for key in ATTACHMENT_ONLY if key in values]
    if images:
        raise CommandError(f"defaults: {images[0]} cannot be a default (images come from "
                           f"attachments only); leave it out", images[0], rule="defaults")
    for key in NOT_A_DEFAULT.keys() & values.keys():
        raise CommandError(f"defaults: {key} cannot be a default ({NOT_A_DEFAULT[key]}); leave it out",
                           key, rule="defaults")
    if "diffusion_model" in values and isinstance(values["diffusion_model"], str):
        values["diffusion_model"] = resolve_model_name(values["diffusion_model"])
    try:
        spec = bot_baseline(values)
    except SpecError as err:
        raise CommandError(f"defaults: {err}", err.param, rule="defaults") from None
    return {key: spec.to_dict()[key] for key in values}


def parse_model_list(text: str, kind: str) -> list[str] | None:
    """The models an admin allows, comma- or space-separated; `every` (None) allows them all."""
    names = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    if [n.lower() for n in names] == [EVERY]:
        return None
    if not 1 <= len(names) <= MAX_ALLOWED_MODELS:
        raise CommandError(f"allowed_models takes 1 to {MAX_ALLOWED_MODELS} model names: give some, "
                           f"or '{EVERY}' to allow every model",
                           "models", rule="allowed_models")
    return _checked_names(names, kind)


def _checked_names(names: list[str], kind: str) -> list[str]:
    # One at a time: a wrong name is shown as typed, in full; a job's list refuses a model named
    # twice, an admin's list just keeps it once ("rn50, RN50::openai" included).
    choices = CLIP_MODELS if kind == "clip" else choices_of("diffusion_model")
    checked: list[str] = []
    for name in names:
        try:
            checked += (check_clip_models([name], "clip_models") if kind == "clip"
                        else [check_choice(resolve_model_name(name), "diffusion_model")])
        except Invalid:
            guess = closest_name(name, list(choices))
            raise CommandError(f"'{name[:100]}' is not a known {kind} model (rule: allowed_models)"
                               + (f"; did you mean {guess}?" if guess else "")
                               + f" — fix: use names from {', '.join(choices)}", "models",
                               rule="allowed_models") from None
    return list(dict.fromkeys(checked))


def check_allowed_models(spec: RenderSpec | AnimationSpec | StudySpec,
                         allowed_models: Iterable[str] | None,
                         allowed_clip_models: Iterable[str] | None,
                         own_defaults: dict[str, Any] | None = None) -> None:
    """CommandError when any render of the job (every study cell, an animation's frames) uses a
    diffusion or CLIP model the server does not allow (None: every model is allowed).
    `own_defaults`: the member's own defaults the job kept (`ParsedJob.own_defaults`); a model
    that came from them is refused saying so, with how to change them. A description is checked
    for its CLIP models only."""
    models = None if allowed_models is None else tuple(allowed_models)
    clips = None if allowed_clip_models is None else tuple(allowed_clip_models)
    own = own_defaults or {}
    for render in render_specs(spec):
        # A description (`describe`) only runs CLIP: whatever diffusion model its defaults name is unused.
        if models is not None and not render.describe and render.diffusion_model not in models:
            mine = own.get("diffusion_model") == render.diffusion_model
            raise CommandError(
                f"the diffusion model {render.diffusion_model}{_from_own(mine)} is not allowed on "
                f"this server (rule: allowed_models) — fix: choose one of {', '.join(models)}"
                + (f" with the model option, or {_own_fix('diffusion_model', (models or ('',))[0])}"
                   if mine else ""),
                "diffusion_model", rule="allowed_models")
        forbidden = [c for c in render.clip_models if clips is not None and c not in clips]
        if forbidden:
            kept = [c for c in render.clip_models if c not in forbidden]
            example = ",".join(kept or list(clips)[:1]) or "an allowed model"
            mine = forbidden[0] in (own.get("clip_models") or ())
            raise CommandError(
                f"the CLIP model {forbidden[0]}{_from_own(mine)} is not allowed on this server (rule: "
                f"allowed_clip_models) — fix: use only {', '.join(clips)}, e.g. "
                f"settings:\"clip_models={example}\"" + (f"; {_own_fix('clip_models', example)}" if mine else ""),
                "clip_models", rule="allowed_clip_models")


def _from_own(mine: bool) -> str:
    return " (from your own defaults)" if mine else ""


def _own_fix(key: str, example: str) -> str:
    """How to change the member's own default `key` that a server refuses."""
    return (f"change your default with /disco-settings defaults:\"{key}={example}\" (or remove it "
            f"with /disco-settings reset:{key})")


def defaults_over_limits(scopes: dict[str, dict[str, Any]], limits: JobLimits) -> str:
    """A warning naming every scope ("the server's defaults": {...}) whose defaults the server's
    limits would change in each job that keeps them; "" when they fit."""
    lines, said = [], []
    for scope, defaults in scopes.items():
        notes = limit_adjustments(bot_baseline(defaults), limits) if defaults else []
        if notes and notes not in said:  # a channel's that only repeat the server's: once
            said.append(notes)
            lines.append(f"**Warning:** {scope} are over this server's limits, so every job that "
                         f"keeps them is changed: {'; '.join(notes)}. Lower the defaults or raise "
                         f"the limits")
    return "\n".join(lines)


def defaults_text(defaults: dict[str, Any]) -> str:
    """Defaults as a code span of the `settings` text that sets them, bounded so that
    /disco-info keeps its later lines: long values (a long default prompt) shortened, at most
    DEFAULTS_CHARS, then how many settings were left out."""
    pairs = [f"{key}={_value_text(value)}" for key, value in sorted(defaults.items())]
    kept: list[str] = []
    for pair in pairs:
        if len("; ".join([*kept, pair])) > DEFAULTS_CHARS:
            break
        kept.append(pair)
    left_out = len(pairs) - len(kept)
    return code_span("; ".join(kept), DEFAULTS_CHARS) + (f" (+{left_out} more)" if left_out else "")


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        parts = [p.get("text", "") + (f":{p['weight']:g}" if p.get("weight", 1) != 1 else "")
                 if isinstance(p, dict) else str(p) for p in value]
        text = ",".join(parts)
    else:
        text = str(value)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + "…"


def rules_lines(defaults: dict[str, Any], channel_defaults: dict[str, Any],
                allowed_models: tuple[str, ...] | None,
                allowed_clip_models: tuple[str, ...] | None) -> list[str]:
    """The rules as lines for /disco-info and /disco-admin defaults show."""
    return [
        "Server defaults: " + (defaults_text(defaults) if defaults else "none (DD's)"),
        "This channel's defaults: " + (defaults_text(channel_defaults)
                                       if channel_defaults else "none (the server's apply)"),
        "Diffusion models allowed: " + (", ".join(allowed_models) if allowed_models is not None
                                        else "every model"),
        "CLIP models allowed: " + (", ".join(allowed_clip_models) if allowed_clip_models is not None
                                   else "every model"),
    ]
