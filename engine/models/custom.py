"""Custom diffusion models from the config file: DD's `diffusion_model: custom`, made explicit.

    [models.custom.my_portraits]
    url = "https://example.org/my_portraits.pt"   # or: path = "/models/my_portraits.pt"
    sha256 = "…64 hex digits…"
    image_size = 256              # then any guided-diffusion value that differs from DD's 512 model
    num_channels = 128
    num_heads = 4
    attention_resolutions = "16"
    cut_schedules = "default"     # DD's cut-schedule group: default, pad_or_pulp or watercolor

Every table becomes a registry entry (`ModelFile`, kind "diffusion") in whichever process read
the config file: the bot checks names against it (it never imports torch), the engine's loader
fetches and checks the file through engine/models/download.py like any registry model. A value
not given keeps DD's 512 model's (`BASE_CONFIG`). Torch-free.
"""
from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from engine.errors import ModelError
from engine.models.registry import (
    CUT_SCHEDULE_GROUPS,
    DEFAULT_DIFFUSION_MODEL,
    DIFFUSION_MODEL_NAMES,
    ModelFile,
    custom_model_names,
    diffusion_config,
    get_model,
    register_model,
)

MAX_CUSTOM_MODELS = 32
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
BASE_CONFIG: Mapping[str, Any] = MappingProxyType(diffusion_config(DEFAULT_DIFFUSION_MODEL))
_SIZE_256_CLASS, _SIZE_512_CLASS = (512, 448), (1280, 768)  # DD's width_height per model class


class _Bad(ValueError):
    """One value is wrong; the message says what is allowed."""


def _whole(low: int, high: int, multiple: int = 1) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high \
                or value % multiple:
            step = f", a multiple of {multiple}" if multiple > 1 else ""
            raise _Bad(f"a whole number {low}..{high}{step}")
        return value
    return check


def _one_of(*allowed: object) -> Callable[[object], object]:
    def check(value: object) -> object:
        if isinstance(value, bool) or value not in allowed:
            raise _Bad("one of " + ", ".join(str(a) for a in allowed))
        return value
    return check


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Bad("true or false")
    return value


def _number_list(low: int, high: int, *, empty: bool) -> Callable[[object], str]:
    """guided-diffusion's comma-separated lists ("32, 16, 8"), at most 8 whole numbers."""
    def check(value: object) -> str:
        parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else None
        if parts == [""] and empty:
            return ""
        if (not parts or len(parts) > 8
                or not all(p.isdigit() and len(p) <= 4 and low <= int(p) <= high for p in parts)):
            raise _Bad(f'comma-separated whole numbers {low}..{high}, e.g. "32, 16, 8"'
                       + (' (or "" for the default)' if empty else ""))
        return ", ".join(parts)
    return check


def _num_head_channels(value: object) -> int:
    if value == -1 and not isinstance(value, bool):
        return -1
    return _whole(8, 1024)(value)


# guided-diffusion's create_model arguments a custom model may change, and their checks.
ARCHITECTURE_KEYS: dict[str, Callable[[object], object]] = {
    "image_size": _one_of(64, 128, 256, 512),
    "num_channels": _whole(32, 1024, 32),  # GroupNorm(32) needs multiples of 32
    "num_res_blocks": _whole(1, 8),
    "num_heads": _whole(1, 64),
    "num_head_channels": _num_head_channels,
    "attention_resolutions": _number_list(1, 512, empty=False),
    "channel_mult": _number_list(1, 8, empty=True),
    "learn_sigma": _flag, "resblock_updown": _flag, "use_scale_shift_norm": _flag,
    "rescale_timesteps": _flag, "use_new_attention_order": _flag,
    "noise_schedule": _one_of("linear", "cosine"),
    "diffusion_steps": _whole(100, 4000),
}
OTHER_KEYS = ("url", "path", "sha256", "cut_schedules", "ignore_keys", "notes")
KNOWN_KEYS = OTHER_KEYS + tuple(ARCHITECTURE_KEYS)


def _where(name: str, key: str | None = None) -> str:
    return f"[models.custom.{name}]" + (f" {key}" if key else "")


def check_name(name: object) -> str:
    """A custom model's name: letters, digits, '_', '.', '-' (≤ 64), not a built-in model's."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ModelError(f"{_where(str(name)[:70])}: a custom model's name is 1-64 letters, digits, "
                         f"'_', '.' or '-', starting with a letter or digit")
    if name.lower() == "custom" or name in DIFFUSION_MODEL_NAMES:
        raise ModelError(f"{_where(name)}: {name!r} is the name of a built-in model (or DD's word "
                         f"'custom'); give your model a name of its own")
    try:
        get_model(name)
    except ModelError:
        return name
    if name not in custom_model_names():
        raise ModelError(f"{_where(name)}: {name!r} is already a model file of the registry; give "
                         f"your model a name of its own")
    return name


def _source(name: str, table: Mapping[str, Any]) -> tuple[tuple[str, ...], str, str | None]:
    """(urls, filename, local_path) from exactly one of `url` and `path`."""
    if ("url" in table) == ("path" in table):
        raise ModelError(f"{_where(name)}: give exactly one of url (an http(s) address to download) "
                         f"or path (a file on the engine's machine)")
    if "url" in table:
        url = table["url"]
        parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2000 else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ModelError(f"{_where(name, 'url')}: expected an http:// or https:// address of at "
                             f"most 2000 characters, e.g. \"https://example.org/model.pt\"")
        return (url,), f"custom--{name}.pt", None
    path = table["path"]
    if not isinstance(path, str) or not path.strip() or len(path) > 1000 or "\0" in path:
        raise ModelError(f"{_where(name, 'path')}: expected the model file's path (at most 1000 "
                         f"characters), e.g. \"/models/{name}.pt\"")
    filename = PurePosixPath(path).name
    if not filename:
        raise ModelError(f"{_where(name, 'path')}: {path!r} names a folder; give the file's path")
    return (), filename, path


def parse_custom_model(name: object, table: object) -> ModelFile:
    """One `[models.custom.NAME]` table as a registry entry; ModelError names the key and the fix."""
    name = check_name(name)
    if not isinstance(table, dict):
        raise ModelError(f"{_where(name)}: expected a table of keys (url, sha256, image_size, …)")
    unknown = [key for key in table if key not in KNOWN_KEYS]
    if unknown:
        raise ModelError(f"{_where(name)}: unknown key {str(unknown[0])[:60]!r}; known keys: "
                         + ", ".join(KNOWN_KEYS))
    urls, filename, local_path = _source(name, table)
    sha256 = table.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ModelError(f"{_where(name, 'sha256')}: expected the file's SHA-256, 64 hex digits "
                         f"(`sha256sum FILE` prints it); it is required, so the engine loads "
                         f"exactly the file you chose")
    config = dict(BASE_CONFIG)
    for key, check in ARCHITECTURE_KEYS.items():
        if key in table:
            try:
                config[key] = check(table[key])
            except _Bad as bad:
                raise ModelError(f"{_where(name, key)}: {str(table[key])[:40]!r} is not allowed; "
                                 f"expected {bad}") from None
    group = table.get("cut_schedules", "default")
    if group not in CUT_SCHEDULE_GROUPS:
        raise ModelError(f"{_where(name, 'cut_schedules')}: expected one of "
                         f"{', '.join(CUT_SCHEDULE_GROUPS)} (DD's cut-schedule groups)")
    ignored = table.get("ignore_keys", [])
    if (not isinstance(ignored, list) or len(ignored) > 8
            or not all(isinstance(k, str) and 1 <= len(k) <= 100 for k in ignored)):
        raise ModelError(f"{_where(name, 'ignore_keys')}: expected a list of at most 8 state-dict "
                         f'key prefixes the file has and the model lacks, e.g. ["label_emb."]')
    notes = table.get("notes", "")
    if not isinstance(notes, str) or len(notes) > 300:
        raise ModelError(f"{_where(name, 'notes')}: expected a text of at most 300 characters")
    size = _SIZE_256_CLASS if config["image_size"] <= 256 else _SIZE_512_CLASS
    return ModelFile(name=name, filename=filename, urls=urls, sha256=sha256.lower(), size=None,
                     kind="diffusion", config=MappingProxyType(config),
                     notes=notes or "A custom model from the config file.", cut_group=group,
                     default_size=size, unused_keys=tuple(ignored), local_path=local_path)


def parse_custom_models(tables: object) -> tuple[ModelFile, ...]:
    """Every table of the config file's `[models.custom]` (a mapping of NAME → table)."""
    if not isinstance(tables, dict):
        raise ModelError("[models.custom]: expected tables named [models.custom.NAME]")
    if len(tables) > MAX_CUSTOM_MODELS:
        raise ModelError(f"[models.custom]: at most {MAX_CUSTOM_MODELS} custom models; remove some")
    return tuple(parse_custom_model(name, table) for name, table in tables.items())


def register_custom_models(entries: tuple[ModelFile, ...]) -> None:
    """Put the config file's custom models in this process's registry (again: replaced)."""
    for entry in entries:
        register_model(entry, replace=entry.name in custom_model_names())


def config_table(name: str, table: Mapping[str, Any]) -> str:
    """The TOML text of one `[models.custom.NAME]` table, after checking it parses as one."""
    parse_custom_model(name, dict(table))
    lines = [f"[models.custom.{name}]"]
    for key, value in table.items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # JSON escapes are TOML basic-string escapes
