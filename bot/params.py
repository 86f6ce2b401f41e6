"""The options that /disco, /study, /animate and /rerun share: bounds, choices, descriptions, the
preset autocomplete and the model autocomplete (the server's allowed models, custom ones included).

Numeric bounds are read from the engine's tables of allowed values (`SPEC_ALLOWED` of
engine.spec.fields, `ALLOWED` of engine.spec.animation) — the same "2..1000" a refusal shows —
so the client refuses exactly what the spec would, and a bound changed in the engine changes
here. A table entry without a "low..high" start fails at import, not at a user's request.
"""
from __future__ import annotations

import itertools
import re
from typing import Any

import discord
from discord import app_commands

from commands.sizes import SIZE_CHOICES
from engine.spec import animation
from engine.spec.fields import CHOICES, SPEC_ALLOWED, choices_of

_BOUNDS = re.compile(r"(-?\d+(?:\.\d+)?)\.\.(-?\d+(?:\.\d+)?)")


def allowed_bounds(allowed: str) -> tuple[int | float, int | float]:
    """(low, high) of an allowed-values text such as "2..1000 (whole number)"."""
    match = _BOUNDS.match(allowed)
    if match is None:
        raise ValueError(f"no low..high bounds at the start of {allowed!r}")
    low, high = (float(n) if "." in n else int(n) for n in match.groups())
    return low, high


def spec_range(kind: type, allowed: str) -> Any:
    """`app_commands.Range[kind, low, high]` for an allowed-values text."""
    low, high = allowed_bounds(allowed)
    return app_commands.Range[kind, low, high]


# ---- numbers: the spec's bounds ------------------------------------------------------------
Steps = spec_range(int, SPEC_ALLOWED["steps"])
Side = spec_range(int, SPEC_ALLOWED["width"])  # width and height share their bounds
Seed = spec_range(int, SPEC_ALLOWED["seed"])
GuidanceScale = spec_range(float, SPEC_ALLOWED["clip_guidance_scale"])
InitScale = spec_range(float, SPEC_ALLOWED["init_scale"])
CutnBatches = spec_range(int, SPEC_ALLOWED["cutn_batches"])
Images = spec_range(int, SPEC_ALLOWED["n_batches"])  # /disco's n
# The spec allows skip_steps 0..steps-1; a Discord option needs a fixed bound: the most steps less one.
SkipSteps = app_commands.Range[int, 0, Steps.max_value - 1]
Frames = spec_range(int, animation.ALLOWED["max_frames"])
Fps = spec_range(int, animation.ALLOWED["fps"])

# ---- text: Discord-side caps ---------------------------------------------------------------
# Deliberately tighter than what the parsers accept (commands' MAX_PROMPT_CHARS, the spec's
# MAX_OPTION_LENGTH and MAX_AXIS_TEXT): the client stops an over-long paste before it is sent,
# and the parsers still check whatever arrives.
Prompt = app_commands.Range[str, 1, 1500]
Settings = app_commands.Range[str, 1, 4000]
Keyframes = app_commands.Range[str, 1, 1000]
StudyAxis = app_commands.Range[str, 3, 2000]  # "k=v" is the shortest axis
PresetName = app_commands.Range[str, 1, 32]   # storage.presets: names of 1-32 characters
JobId = app_commands.Range[str, 1, 40]        # a job id is 26 characters; the cap leaves slack

# ---- choices -------------------------------------------------------------------------------
SIZES = [app_commands.Choice(name=f"{key}: {choice.label}"[:100], value=key)
         for key, choice in SIZE_CHOICES.items()]
SAMPLERS = [app_commands.Choice(name=mode, value=mode) for mode in CHOICES["sampling_mode"]]

# ---- descriptions --------------------------------------------------------------------------
DESCRIPTIONS = {
    "prompt": 'prompts joined by "|" with optional weights, e.g. "a lighthouse:2 | yellow:-0.5"',
    "steps": "diffusion steps (more is finer and slower; DD's default 250)",
    "width": "width in pixels (rounded down to a multiple of 64)",
    "height": "height in pixels (rounded down to a multiple of 64)",
    "size": "a named size (instead of width and height)",
    "seed": "the noise seed: the same seed and settings paint the same image",
    "clip_guidance_scale": "how strongly CLIP pulls toward the prompts (DD's default 5000)",
    "cutn_batches": "how many times the cut schedule runs per step (better, slower)",
    "skip_steps": "steps skipped at the start", "sampling_mode": "the sampler",
    "settings": 'any other DD settings: "eta=0.5; cut_ic_pow=4" (/disco-help setting: explains each)',
    "settings_file": "a DD *_settings.txt, our settings JSON, or a PNG the bot posted (its settings)",
    "init_image": "an image to start from (set skip_steps to about half of steps)",
    "init_scale": "how closely to keep the init image (DD's default 1000)",
    "image_prompt": "an image to steer toward, like a prompt", "model": "the diffusion model",
    "preset": "a saved preset (/preset list) under these options",
}


def describe(*shared: str, **own: str) -> dict[str, str]:
    """For `app_commands.describe(**…)`: the shared texts of the options named in `shared`, then
    this command's `own`."""
    return {**{name: DESCRIPTIONS[name] for name in shared}, **own}


async def preset_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete for a preset name: the caller's presets and the server's whose name contains
    what was typed, taken in turn so that neither kind fills Discord's 25 choices alone; a name
    both have is the caller's (as `/preset use` picks it)."""
    if interaction.guild_id is None:
        return []
    typed = current.strip().lower()
    presets = await interaction.client.db.presets.list(interaction.guild_id, owner_id=interaction.user.id)
    own = [p.name for p in presets if p.owner_id and typed in p.name]
    server = [p.name for p in presets if not p.owner_id and typed in p.name and p.name not in own]
    taken = [name for pair in itertools.zip_longest(own, server) for name in pair if name][:25]
    return [app_commands.Choice(name=f"{name} ({'yours' if name in own else 'server'})", value=name)
            for name in sorted(taken)]


async def model_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete for `model`: the diffusion models this server allows (every registered one,
    the config file's custom models included, unless an admin narrowed them), matching what was
    typed (≤ 25). The queue's door checks the choice again."""
    allowed = (await interaction.client.db.guilds.get(interaction.guild_id)).allowed_models
    names = [name for name in choices_of("diffusion_model")
             if (allowed is None or name in allowed) and current.lower() in name.lower()]
    return [app_commands.Choice(name=name[:100], value=name) for name in names[:25]]
