"""Interaction callbacks and interaction webhooks (follow-ups, @original), with Discord's rules.

Rules enforced (receiving-and-responding.mdx):
- one initial response per interaction (else 400 / 40060), within ``fake.initial_response_timeout``
  seconds of the fake's clock (else 404 / 10062 "Unknown interaction");
- the token works for ``fake.token_lifetime`` (15 min) for follow-ups and @original edits
  (else 401 / 50027 "Invalid Webhook Token");
- a type-5 defer creates a "thinking" message flagged LOADING; the first follow-up after it edits
  that message instead of creating a new one (Discord's back-compat behaviour);
- type 6/7 only answer component or modal interactions; @original then is the component's message;
- ``?with_response=1`` (discord.py always sends it) gets the callback-response body, else 204.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from aiohttp import web

from .store import FLAG_EPHEMERAL, FLAG_LOADING, CallbackRecord, InteractionRecord, StoredMessage
from .validate import check_modal
from .wire import (
    ALREADY_ACKNOWLEDGED,
    FILES,
    INVALID_WEBHOOK_TOKEN,
    PAYLOAD,
    RECORD,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordError,
    empty_response,
    invalid_form,
    json_response,
    not_found,
)

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeDiscord

# Interaction types (what the user did) and callback types (how the bot answers).
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 6, 7, 8, 9
_TRUE = ("1", "true", "True")


class InteractionRoutes:
    def __init__(self, fake: "FakeDiscord") -> None:
        self.fake = fake

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_post(prefix + "/interactions/{iid}/{token}/callback", self.callback)
        router.add_post(prefix + "/webhooks/{app}/{token}", self.followup)
        for method in ("GET", "PATCH", "DELETE"):
            router.add_route(method, prefix + "/webhooks/{app}/{token}/messages/{mid}", self.webhook_message)

    # -- the initial response ------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        fake = self.fake
        try:
            rec = fake.interactions.get(int(request.match_info["iid"]))
        except ValueError:
            rec = None
        if rec is None or rec.token != request.match_info["token"]:
            raise not_found(UNKNOWN_INTERACTION, "interaction")
        if rec.acknowledged:
            raise DiscordError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        limit = fake.initial_response_timeout
        if limit is not None and fake.now() - rec.time > limit:
            # Too late: Discord has already shown "This interaction failed" and forgotten it.
            raise not_found(UNKNOWN_INTERACTION, "interaction")
        body = request[PAYLOAD] or {}
        ctype, data, files = body.get("type"), body.get("data") or {}, request[FILES]
        msg = await self._apply(rec, ctype, data, files)
        loop_now = request[RECORD].mono
        rec.callbacks.append(CallbackRecord(rec.id, ctype, body.get("data"), [f[:3] for f in files],
                                            fake.now(), loop_now, loop_now - rec.mono))
        if request.query.get("with_response") not in _TRUE:
            return empty_response()
        interaction = {"id": str(rec.id), "type": rec.type, "response_message_loading": ctype == DEFERRED_MESSAGE,
                       "response_message_ephemeral": bool(msg is not None and msg.ephemeral)}
        resource: dict = {"type": ctype}
        if msg is not None:
            interaction["response_message_id"] = str(msg.id)
            resource["message"] = msg.payload()
        return json_response({"interaction": interaction, "resource": resource})

    async def _apply(self, rec: InteractionRecord, ctype: int, data: dict, files) -> Optional[StoredMessage]:
        """Carry out one callback; returns the message it created or updated, if any."""
        ops = self.fake.message_ops
        limit = rec.payload["attachment_size_limit"]
        from_message = rec.source_message_id is not None
        if ctype == MESSAGE:
            msg = await ops.create(rec.channel_id, data, files, limit=limit, **self._message_fields(rec))
            rec.original_message_id = msg.id
            return msg
        if ctype == DEFERRED_MESSAGE:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            msg = await ops.create(rec.channel_id, {}, [], limit=limit, extra_flags=flags, **self._message_fields(rec))
            rec.original_message_id = msg.id
            rec.followup_edits_loading = True
            return msg
        if ctype in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            if not from_message:
                raise invalid_form({"type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                                          "message": "Only valid for component interactions"}]}})
            msg = self.fake.messages[rec.source_message_id]
            rec.original_message_id = msg.id
            if ctype == UPDATE_MESSAGE:
                await ops.edit(msg, data, files, limit=limit, via_webhook=True)
                return msg
            return None
        if ctype == AUTOCOMPLETE_RESULT and rec.type == AUTOCOMPLETE:
            return None
        if ctype == MODAL and rec.type in (APPLICATION_COMMAND, MESSAGE_COMPONENT):
            check_modal(data)
            rec.modal = data
            return None
        raise invalid_form({"type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                                  "message": f"Callback type {ctype} not valid for "
                                                             f"interaction type {rec.type}"}]}})

    def _message_fields(self, rec: InteractionRecord) -> dict:
        """Fields Discord puts on messages created through an interaction."""
        fake = self.fake
        user = rec.payload.get("member", {}).get("user") or rec.payload.get("user")
        meta = {"id": str(rec.id), "type": rec.type, "user": user,
                "authorizing_integration_owners": rec.payload.get("authorizing_integration_owners", {})}
        if rec.type == APPLICATION_COMMAND:
            meta["name"] = rec.payload["data"]["name"]
        if rec.source_message_id is not None:
            meta["interacted_message_id"] = str(rec.source_message_id)
        return {"msg_type": 20 if rec.type == APPLICATION_COMMAND else 0, "webhook_id": fake.application_id,
                "application_id": fake.application_id, "interaction_id": rec.id, "interaction_metadata": meta}

    # -- the interaction webhook ---------------------------------------------------------------

    def _token_record(self, request: web.Request) -> InteractionRecord:
        fake = self.fake
        token = request.match_info["token"]
        rec = next((r for r in fake.interactions.values() if r.token == token), None)
        if request.match_info["app"] != str(fake.application_id):
            raise not_found(UNKNOWN_WEBHOOK, "Webhook")
        if rec is None or fake.now() - rec.time > fake.token_lifetime:
            raise DiscordError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        return rec

    async def followup(self, request: web.Request) -> web.Response:
        rec = self._token_record(request)
        if not rec.acknowledged:
            raise not_found(UNKNOWN_WEBHOOK, "Webhook")
        ops = self.fake.message_ops
        payload, files = request[PAYLOAD] or {}, request[FILES]
        limit = rec.payload["attachment_size_limit"]
        original = self.fake.messages.get(rec.original_message_id) if rec.original_message_id else None
        if rec.followup_edits_loading and original is not None and original.loading and not original.deleted:
            # The first follow-up after a defer fills in the "thinking..." message; its own
            # ephemeral flag is ignored (the defer already decided).
            rec.followup_edits_loading = False
            msg = await ops.edit(original, {k: v for k, v in payload.items() if k != "flags"}, files,
                                 limit=limit, via_webhook=True)
        else:
            msg = await ops.create(rec.channel_id, payload, files, limit=limit, **self._message_fields(rec))
        rec.followup_ids.append(msg.id)
        if request.query.get("wait") not in _TRUE:
            return empty_response()
        return json_response(msg.payload())

    async def webhook_message(self, request: web.Request) -> web.Response:
        rec = self._token_record(request)
        mid = request.match_info["mid"]
        if mid == "@original":
            msg_id = rec.original_message_id
        else:
            try:
                msg_id = int(mid)
            except ValueError:
                msg_id = None
            if msg_id not in rec.followup_ids and msg_id != rec.original_message_id:
                msg_id = None
        msg = self.fake.messages.get(msg_id) if msg_id is not None else None
        if msg is None or msg.deleted:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        if request.method == "GET":
            return json_response(msg.payload())
        if request.method == "DELETE":
            await self.fake.message_ops.delete(msg)
            return empty_response()
        await self.fake.message_ops.edit(msg, request[PAYLOAD], request[FILES],
                                         limit=rec.payload["attachment_size_limit"], via_webhook=True)
        return json_response(msg.payload())
