"""Where and how precisely the engine runs: device names and precisions, as text.

Torch-free, so that `disco` checks a config file's `[engine]` section when it loads it (in the
bot's process too) instead of letting a misspelt device stop the engine after the bot is up.
engine/models/pool.py turns a checked name into a torch device and the GPUs this host has.
"""
from __future__ import annotations

import re

from engine.errors import ModelError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DEVICE_NAME = re.compile(r"cpu|cuda(?::\d{1,2})?")


def check_device_name(name: str, *, allow_auto: bool = True) -> str:
    """`name` when it is `cpu`, `cuda`, `cuda:N` (or `auto`); else a ModelError with the choices."""
    if (allow_auto and name == "auto") or _DEVICE_NAME.fullmatch(name):
        return name
    choices = "auto, cpu, cuda or cuda:N" if allow_auto else "cpu, cuda or cuda:N"
    raise ModelError(f"{name[:40]!r} is not a device this engine runs on; use {choices} "
                     "(N = the GPU's index, as nvidia-smi lists it)")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision[:40]!r}: choose one of {', '.join(PRECISIONS)}")
    return precision
