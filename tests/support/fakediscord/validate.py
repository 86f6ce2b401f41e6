"""Discord's documented message limits, checked the way the real API rejects them.

A fake that accepts anything would let a bot pass its tests and then fail in production with
400 "Invalid Form Body" (50035). These checks cover the limits a bot that posts long prompts,
settings embeds and button rows is likely to hit (developers/resources/message.mdx and
components/reference.mdx). Each violation is reported under the JSON path of the bad field,
in the same nested ``errors`` shape Discord uses.
"""
from __future__ import annotations

from typing import Any, Optional

from .wire import CANNOT_SEND_EMPTY_MESSAGE, DiscordError, invalid_form

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
MAX_FIELDS = 25
MAX_FILES = 10
MAX_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
SELECTS = (3, 5, 6, 7, 8)  # string, user, role, mentionable and channel selects: each fills a row
MAX_SELECT_OPTIONS = 25
# Modals (components/reference.mdx, receiving-and-responding.mdx "Modal"): a title, 1-5 top-level
# components (Labels, type 18, wrapping a text input; or legacy rows of one text input).
MAX_MODAL_TITLE = 45
MAX_MODAL_COMPONENTS = 5
MAX_MODAL_LABEL = 45
MAX_TEXT_INPUT = 4000
MAX_PLACEHOLDER = 100


def _error(errors: dict, path: str, code: str, message: str) -> None:
    node = errors
    for key in path.split("."):
        node = node.setdefault(key, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def _too_long(errors: dict, path: str, value: Optional[str], limit: int) -> int:
    """Record an error if ``value`` is longer than ``limit``; return its length for totals."""
    if not value:
        return 0
    if len(value) > limit:
        _error(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(value)


def _check_embeds(errors: dict, embeds: list) -> None:
    if len(embeds) > MAX_EMBEDS:
        _error(errors, "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        base = f"embeds.{i}"
        for key, limit in EMBED_TEXT_LIMITS.items():
            total += _too_long(errors, f"{base}.{key}", embed.get(key), limit)
        total += _too_long(errors, f"{base}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        total += _too_long(errors, f"{base}.author.name", (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > MAX_FIELDS:
            _error(errors, f"{base}.fields", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FIELDS} or fewer in length.")
        for j, fld in enumerate(fields):
            total += _too_long(errors, f"{base}.fields.{j}.name", fld.get("name"), 256)
            total += _too_long(errors, f"{base}.fields.{j}.value", fld.get("value"), 1024)
    if total > MAX_EMBED_TOTAL:
        _error(errors, "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _check_components(errors: dict, components: list, flags: int) -> None:
    if flags & (1 << 15):
        # Components V2 layouts have different rules; only custom_id uniqueness is checked below.
        rows: list = []
    else:
        rows = components
        if len(rows) > MAX_ROWS:
            _error(errors, "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROWS} or fewer in length.")
    for i, row in enumerate(rows):
        children = row.get("components") or []
        buttons = [c for c in children if c.get("type") == 2]
        if len(buttons) > MAX_BUTTONS_PER_ROW:
            _error(errors, f"components.{i}.components", "BASE_TYPE_MAX_LENGTH",
                   f"Must be {MAX_BUTTONS_PER_ROW} or fewer in length.")
        if any(c.get("type") in SELECTS for c in children) and len(children) > 1:
            _error(errors, f"components.{i}.components", "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                   "The specified component exceeds the maximum width")
        for j, child in enumerate(children):
            _too_long(errors, f"components.{i}.components.{j}.label", child.get("label"), MAX_LABEL)
            options = child.get("options") or []
            if len(options) > MAX_SELECT_OPTIONS:
                _error(errors, f"components.{i}.components.{j}.options", "BASE_TYPE_MAX_LENGTH",
                       f"Must be {MAX_SELECT_OPTIONS} or fewer in length.")
            _too_long(errors, f"components.{i}.components.{j}.placeholder", child.get("placeholder"), 150)
    seen: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for k, value in enumerate(node):
                walk(value, f"{path}.{k}")
        elif isinstance(node, dict):
            custom_id = node.get("custom_id")
            if custom_id is not None:
                _too_long(errors, f"{path}.custom_id", custom_id, MAX_CUSTOM_ID)
                if custom_id in seen:
                    _error(errors, f"{path}.custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED",
                           "Component custom id cannot be duplicated")
                seen.add(custom_id)
            for key in ("components", "component", "accessory"):
                if key in node:
                    walk(node[key], f"{path}.{key}")

    walk(components, "components")


def check_message(payload: Optional[dict], n_files: int, *, creating: bool) -> None:
    """Raise DiscordError when a create/edit payload breaks one of Discord's limits.

    ``creating`` adds the create-only rule that a message must not be empty.
    """
    payload = payload or {}
    errors: dict = {}
    _too_long(errors, "content", payload.get("content"), MAX_CONTENT)
    _check_embeds(errors, payload.get("embeds") or [])
    _check_components(errors, payload.get("components") or [], int(payload.get("flags") or 0))
    if n_files > MAX_FILES:
        _error(errors, "files", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
    if errors:
        raise invalid_form(errors)
    if creating and not (payload.get("content") or payload.get("embeds") or payload.get("components")
                         or payload.get("sticker_ids") or payload.get("poll") or n_files):
        raise DiscordError(400, CANNOT_SEND_EMPTY_MESSAGE, "Cannot send an empty message")


def _check_text_input(errors: dict, path: str, node: dict) -> None:
    _too_long(errors, f"{path}.custom_id", node.get("custom_id"), MAX_CUSTOM_ID)
    _too_long(errors, f"{path}.placeholder", node.get("placeholder"), MAX_PLACEHOLDER)
    _too_long(errors, f"{path}.value", node.get("value"), MAX_TEXT_INPUT)
    _too_long(errors, f"{path}.label", node.get("label"), MAX_MODAL_LABEL)
    for key, low in (("min_length", 0), ("max_length", 1)):
        value = node.get(key)
        if value is not None and not low <= int(value) <= MAX_TEXT_INPUT:
            _error(errors, f"{path}.{key}", "NUMBER_TYPE_MAX",
                   f"int value should be between {low} and {MAX_TEXT_INPUT}.")
    value, top = node.get("value"), node.get("max_length")
    if value and top is not None and len(value) > int(top):
        _error(errors, f"{path}.value", "BASE_TYPE_BAD_LENGTH", f"Must be between 0 and {top} in length.")


def check_modal(data: dict) -> None:
    """Raise DiscordError (50035) when a modal (callback type 9) breaks Discord's limits."""
    errors: dict = {}
    if not data.get("custom_id") or not data.get("title"):
        _error(errors, "data", "BASE_TYPE_REQUIRED", "custom_id and title are required")
    _too_long(errors, "data.title", data.get("title"), MAX_MODAL_TITLE)
    _too_long(errors, "data.custom_id", data.get("custom_id"), MAX_CUSTOM_ID)
    components = data.get("components") or []
    if not 1 <= len(components) <= MAX_MODAL_COMPONENTS:
        _error(errors, "data.components", "BASE_TYPE_BAD_LENGTH",
               f"Must be between 1 and {MAX_MODAL_COMPONENTS} in length.")
    for i, node in enumerate(components):
        path = f"data.components.{i}"
        if node.get("type") == 18:
            _too_long(errors, f"{path}.label", node.get("label"), MAX_MODAL_LABEL)
            _too_long(errors, f"{path}.description", node.get("description"), 100)
            _check_text_input(errors, f"{path}.component", node.get("component") or {})
        elif node.get("type") == 1:
            for j, child in enumerate(node.get("components") or []):
                _check_text_input(errors, f"{path}.components.{j}", child)
        else:
            _error(errors, f"{path}.type", "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (1, 18).")
    if errors:
        raise invalid_form(errors)
