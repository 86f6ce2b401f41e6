"""HTTP wire details: Discord-shaped JSON responses, error bodies, request bodies, route patterns.

discord.py decodes a body as JSON only when ``Content-Type`` is exactly ``application/json``
(``json_or_text`` compares the whole string), and aiohttp's ``web.json_response`` appends
``; charset=utf-8``. So every JSON answer here is built by hand.
"""
from __future__ import annotations

import json
import math
from typing import Any, Optional

from aiohttp import web

JSON_HEADERS = {"Content-Type": "application/json"}

# Per-request storage filled by the middleware: the parsed body and the RecordedRequest.
# aiohttp >= 3.12 wants typed RequestKey objects (plain strings warn); older versions take strings.
_RequestKey = getattr(web, "RequestKey", None)
PAYLOAD = _RequestKey("fd_payload", object) if _RequestKey else "fd_payload"
FILES = _RequestKey("fd_files", list) if _RequestKey else "fd_files"
RECORD = _RequestKey("fd_record", object) if _RequestKey else "fd_record"


def json_response(obj: Any, status: int = 200, headers: Optional[dict] = None) -> web.Response:
    all_headers = dict(JSON_HEADERS)
    all_headers.update(headers or {})
    return web.Response(status=status, body=json.dumps(obj).encode(), headers=all_headers)


def empty_response(status: int = 204) -> web.Response:
    return web.Response(status=status)


class DiscordError(Exception):
    """Raised by route handlers; the middleware turns it into Discord's ``{code, message}`` body."""

    def __init__(self, status: int, code: int, message: str, errors: Optional[dict] = None,
                 headers: Optional[dict] = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: dict = {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors
        self.headers = headers or {}

    def response(self) -> web.Response:
        return json_response(self.body, self.status, self.headers)


# Discord's JSON error codes the fake uses (developers/topics/opcodes-and-status-codes).
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
UNKNOWN_APPLICATION_COMMAND = 10063
CANNOT_EDIT_OTHERS_MESSAGE = 50005
CANNOT_SEND_EMPTY_MESSAGE = 50006
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035
REQUEST_TOO_LARGE = 40005
ALREADY_ACKNOWLEDGED = 40060
OLD_MESSAGE_EDIT_LIMIT = 30046


def not_found(code: int, what: str) -> DiscordError:
    return DiscordError(404, code, f"Unknown {what}")


def invalid_form(errors: dict) -> DiscordError:
    return DiscordError(400, INVALID_FORM_BODY, "Invalid Form Body", errors)


def too_large() -> DiscordError:
    return DiscordError(413, REQUEST_TOO_LARGE, "Request entity too large")


def rate_limit_response(retry_after: float, global_: bool = False, scope: Optional[str] = None,
                        bucket: str = "fakebucket") -> tuple[dict, dict]:
    """Body and headers of a 429 as Discord sends them.

    ``Via`` matters: discord.py treats a 429 without it as a Cloudflare ban and raises at once.
    """
    scope = scope or ("global" if global_ else "user")
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}
    if global_:
        body["code"] = 0
    headers = {
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": bucket, "X-RateLimit-Scope": scope, "Via": "1.1 google",
    }
    if global_:
        headers["X-RateLimit-Global"] = "true"
    return body, headers


async def read_body(request: web.Request) -> tuple[Any, list[tuple[str, str, bytes, Optional[str]]]]:
    """Parse a request body into (json_payload, files).

    Multipart bodies carry the JSON in a ``payload_json`` field and files as ``files[n]``
    parts; each file is returned as (field name, filename, bytes, content type).
    """
    files: list[tuple[str, str, bytes, Optional[str]]] = []
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        payload: Any = None
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            raw = await part.read()
            if part.name == "payload_json":
                payload = json.loads(raw.decode())
            elif part.filename is not None:
                files.append((part.name or "", part.filename, bytes(raw),
                              part.headers.get("Content-Type")))
        return payload, files
    if not request.can_read_body:
        return None, files
    raw = await request.read()
    if not raw:
        return None, files
    try:
        return json.loads(raw.decode()), files
    except ValueError:
        raise invalid_form({"_errors": [{"code": "BASE_TYPE_BAD", "message": "Body is not JSON."}]})


def path_matches(pattern: str, path: str) -> bool:
    """Does ``path`` fit ``pattern``? ``{name}`` matches one segment, ``*`` at the end the rest.

    >>> path_matches("/channels/{id}/messages/{mid}", "/channels/1/messages/2")
    True
    """
    want = pattern.strip("/").split("/")
    got = path.strip("/").split("/")
    if want and want[-1] == "*":
        want = want[:-1]
        got = got[:len(want)]
    if len(want) != len(got):
        return False
    return all((w.startswith("{") and w.endswith("}")) or w == g for w, g in zip(want, got))
