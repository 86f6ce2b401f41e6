"""DD's defaults that depend on other settings, and the one rule for keeping them in step.

DD's skip_steps default (10) was written for 250 steps; a diffusion model brings its own cut
schedules and size. Wherever a setting they depend on changes (a flag, an option, a settings
file, a study axis, a preset), a value that was the old default gives way to the new one;
a value the user chose stays. Torch-free.
"""
from __future__ import annotations

from typing import Any

from engine.errors import ModelError
from engine.models.registry import CUT_SCHEDULE_GROUPS, get_model
from engine.spec import fields

DD_SKIP_STEPS = 10  # DD's default, written for its default of 250 steps


def default_skip_steps(steps: int) -> int:
    """DD's skip_steps (10) where it fits `steps`, else the same share of steps (10 of 250)."""
    return DD_SKIP_STEPS if steps > DD_SKIP_STEPS else steps * DD_SKIP_STEPS // 250


def follow_steps(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`values` updated by `changes`, with the one rule for steps and skip_steps wherever steps
    come from (flag, option, settings, file, study axis, preset): when `changes` sets steps but
    not skip_steps, a skip_steps that is DD's default for the old steps is dropped, so DD's
    default for the new steps applies (`RenderSpec` scales it when 10 does not fit). The same
    for a new diffusion_model: cut schedules and size that were the old model's DD defaults
    give way to the new model's."""
    merged = {**values, **changes}
    if "diffusion_model" in changes and "diffusion_model" in values:
        for key, value in model_defaults(values["diffusion_model"]).items():
            if key not in changes and values.get(key) == value:
                merged.pop(key, None)
    if "steps" in changes and "skip_steps" not in changes and "skip_steps" in values:
        old_steps = values.get("steps", 250)
        if (isinstance(old_steps, int) and not isinstance(old_steps, bool)
                and values["skip_steps"] == default_skip_steps(old_steps)):
            del merged["skip_steps"]
    return merged


def model_defaults(model: object) -> dict[str, Any]:
    """The settings DD derives from a diffusion model (its cut schedules and size)."""
    try:
        entry = get_model(str(model))
    except ModelError:  # an unknown name: validation reports it
        return {}
    defaults: dict[str, Any] = {
        name: fields.check_schedule(text, name, fields.cut_schedule_bounds(name))
        for name, text in CUT_SCHEDULE_GROUPS[entry.cut_group or "default"].items()}
    if entry.default_size is not None:
        defaults.update(width=entry.default_size[0], height=entry.default_size[1])
    return defaults
