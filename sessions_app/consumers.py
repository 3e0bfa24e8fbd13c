"""The live room's websocket. Thin: authenticate, authorize, parse, call a
service, reply. The protocol, in JSON objects with a "type":

client → server
  hello {since}                      replay everything after revision `since`
  note {client_id, kind, text, goal} post a note; answered by ack {client_id, note}
  edit_note {seq, text}, delete_note {seq}
  ping {}                            heartbeat; answered by pong {now}
server → client
  note {revision, seq, client_id, deleted, html}, event {revision, html},
  panel {id, html}, synced {revision, now}, ack, pong, error {message, errors?}
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from sessions_app.live_fragments import PANELS, event_payload, note_payload, panel_payload
from sessions_app.models import EnsembleSession, Event, Membership, Note
from sessions_app.services import notes, presence
from sessions_app.services.timeline import group_name
from sessions_app.services.validation import InvalidInput

# Close codes the client must not reconnect after.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403

# Closed for silence: the client reconnects, as after any close but a refusal.
IDLE = 4408

MAX_MESSAGE_BYTES = 32_000
# A buggy or hostile client may not flood the room: a burst of 30 messages,
# then 10 a second. Replays are costly, so `hello` has a bucket of its own.
RATE_BURST = 30
RATE_PER_SECOND = 10
REPLAY_BURST = 3
REPLAYS_PER_SECOND = 0.5
# Every WATCH_SECONDS the server checks that the client still speaks (its
# heartbeats come every 15 s) and still belongs to the team: a client that
# never pings does not keep reading the room after its member was removed.
WATCH_SECONDS = 15
SILENCE_SECONDS = 50
NOT_JSON = object()


def clock() -> float:
    """The rate limit's clock (a function of its own, so a test can move it on)."""
    return time.monotonic()


class RateLimit:
    """A token bucket per connection."""

    def __init__(self, burst: int = RATE_BURST, per_second: float = RATE_PER_SECOND):
        self.burst, self.per_second = burst, per_second
        self.tokens, self.stamp = float(burst), clock()

    def allow(self) -> bool:
        now = clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _is_member(user, session_id) -> bool:
    return Membership.objects.filter(user=user, team__features__sessions__pk=session_id).exists()


def _replay(session_id, since: int) -> list[dict[str, Any]]:
    """Everything a client holding revision `since` has missed, from the database."""
    session = EnsembleSession.objects.select_related("feature").get(pk=session_id)
    revision = session.revision
    changed = (
        Note.objects.filter(session=session)
        .changed_after(since)
        .select_related("author", "goal")
        .order_by("seq")
    )
    events = Event.objects.filter(session=session, revision__gt=since).order_by("revision")
    return [
        *(note_payload(note) for note in changed),
        *(event_payload(event) for event in events),
        *(panel_payload(session, panel_id) for panel_id in PANELS),
        {"type": "synced", "revision": revision, "now": timezone.now().isoformat()},
    ]


def _heartbeat(session_id, user, channel_name: str) -> tuple[int, dict | None]:
    room = presence.heartbeat(session_id=session_id, user=user, channel_name=channel_name)
    revision = EnsembleSession.objects.values_list("revision", flat=True).get(pk=session_id)
    return revision, room


def _too_big(text: str) -> bool:
    # Characters first: a text short enough in characters is encoded to count
    # its bytes (a character takes up to four).
    return (
        len(text) > MAX_MESSAGE_BYTES
        or len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES
    )


def _errors(invalid: InvalidInput) -> dict[str, list[str]]:
    return {field: [str(e) for e in errors] for field, errors in invalid.form.errors.items()}


def _first_error(invalid: InvalidInput) -> str:
    return next(iter(next(iter(invalid.form.errors.values()))), "That was not valid.")


class SessionConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope["user"]
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        # A refusal is accepted and then closed with its code: closing before
        # accepting makes daphne answer the handshake with HTTP 403, which a
        # browser only sees as 1006, and the client would retry forever.
        if not user.is_authenticated:
            await self.accept()
            await self.close(code=UNAUTHENTICATED)
            return
        # Another team's session looks exactly like one that does not exist.
        if not await database_sync_to_async(_is_member)(user, self.session_id):
            await self.accept()
            await self.close(code=FORBIDDEN)
            return
        self.group = group_name(self.session_id)
        self.rate = RateLimit()
        self.replays = RateLimit(REPLAY_BURST, REPLAYS_PER_SECOND)
        self.last_heard = time.monotonic()
        self.watchdog = asyncio.create_task(self._watch())
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        session = await database_sync_to_async(EnsembleSession.objects.get)(pk=self.session_id)
        await self.announce(
            await database_sync_to_async(presence.join)(
                session=session, user=user, channel_name=self.channel_name
            )
        )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if time.monotonic() - self.last_heard > SILENCE_SECONDS:
                await self.close(code=IDLE)
                return
            if not await self._still_member():
                return

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "watchdog"):
            self.watchdog.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.announce(
                await database_sync_to_async(presence.leave)(
                    session_id=self.session_id, channel_name=self.channel_name
                )
            )

    async def announce(self, payload: dict[str, Any] | None) -> None:
        """Tell the room who is here now (presence is not part of the timeline)."""
        if payload is not None:
            await self.channel_layer.group_send(
                self.group, {"type": "room.broadcast", "payload": payload}
            )

    async def room_broadcast(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))

    async def error(self, message: str, **extra: Any) -> None:
        await self.send_json({"type": "error", "message": message, **extra})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        self.last_heard = time.monotonic()
        if text_data is None or _too_big(text_data):
            await self.error("Messages are JSON text of at most 32 KB.")
            return
        try:
            message = json.loads(text_data)
        except json.JSONDecodeError:
            message = NOT_JSON
        replay = isinstance(message, dict) and message.get("type") == "hello"
        if not (self.replays if replay else self.rate).allow():
            await self.error("Too many messages at once; slow down.", retry=True)
            return
        if message is NOT_JSON:
            await self.error("That message was not valid JSON.")
            return
        if not isinstance(message, dict):
            await self.error("A message is a JSON object with a type.")
            return
        kind = message.get("type")
        # A list or an object as the type would not even be a valid dict key.
        handler = self.HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self.error(f"Unknown message type: {str(message.get('type'))[:40]!r}.")
            return
        await handler(self, message)

    # --- Handlers -----------------------------------------------------------

    async def on_hello(self, message: dict[str, Any]) -> None:
        since = message.get("since", 0)
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            await self.error("hello needs `since`, the last revision held (0 for none).")
            return
        if not await self._still_member():
            return
        for payload in await database_sync_to_async(_replay)(self.session_id, since):
            await self.send_json(payload)

    async def on_ping(self, message: dict[str, Any]) -> None:
        # Heartbeats come every few seconds: someone removed from the team stops
        # receiving the room within one of them, even if they never write.
        if not await self._still_member():
            return
        revision, room = await database_sync_to_async(_heartbeat)(
            self.session_id, self.scope["user"], self.channel_name
        )
        await self.announce(room)
        # The revision lets a client notice a lost broadcast even when nothing
        # else happens after it.
        await self.send_json(
            {"type": "pong", "now": timezone.now().isoformat(), "revision": revision}
        )

    async def on_note(self, message: dict[str, Any]) -> None:
        client_id = message.get("client_id")
        result = await self._write(self._post_note, message)
        if isinstance(result, InvalidInput):
            await self.error(_first_error(result), client_id=client_id, errors=_errors(result))
        elif isinstance(result, InvalidInputMessage):
            await self.error(result.message, client_id=client_id)
        elif result is not None:
            await self.send_json({"type": "ack", "client_id": client_id, "note": result})

    async def on_edit_note(self, message: dict[str, Any]) -> None:
        await self._reply(await self._write(self._edit_note, message))

    async def on_delete_note(self, message: dict[str, Any]) -> None:
        await self._reply(await self._write(self._delete_note, message))

    HANDLERS = {
        "hello": on_hello,
        "ping": on_ping,
        "note": on_note,
        "edit_note": on_edit_note,
        "delete_note": on_delete_note,
    }

    # --- Writes ---------------------------------------------------------------

    async def _still_member(self) -> bool:
        """The handshake's check may be hours old: whoever left the team since
        is closed with 4403 before they read or write anything more."""
        if await database_sync_to_async(_is_member)(self.scope["user"], self.session_id):
            return True
        await self.close(code=FORBIDDEN)
        return False

    async def _write(self, write, message: dict[str, Any]):
        """Run a write in a worker thread, after checking the user is still a member."""
        user = self.scope["user"]
        if not await self._still_member():
            return None
        try:
            return await database_sync_to_async(write)(user, message)
        except InvalidInput as invalid:
            return invalid
        except PermissionDenied as denied:
            return InvalidInputMessage(str(denied) or "That is not yours to change.")

    async def _reply(self, result) -> None:
        if isinstance(result, InvalidInput):
            await self.error(_first_error(result), errors=_errors(result))
        elif isinstance(result, InvalidInputMessage):
            await self.error(result.message)

    def _post_note(self, user, message: dict[str, Any]):
        session = EnsembleSession.objects.get(pk=self.session_id)
        data = {
            "client_id": message.get("client_id"),
            "kind": message.get("kind"),
            "text": message.get("text"),
            "goal": message.get("goal"),
        }
        note, created = notes.post_note(session=session, author=user, data=_strings(data))
        # A new note was rendered once already, for its broadcast.
        return note.payload if created else note_payload(note)

    def _own_note(self, message: dict[str, Any]) -> Note | None:
        seq = message.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return None
        return (
            Note.objects.filter(session_id=self.session_id, seq=seq, deleted_at=None)
            .select_related("session", "author", "goal")
            .first()
        )

    def _edit_note(self, user, message: dict[str, Any]):
        note = self._own_note(message)
        if note is None:
            return InvalidInputMessage("There is no such note.")
        notes.edit_note(note=note, editor=user, data=_strings({"text": message.get("text")}))
        return None

    def _delete_note(self, user, message: dict[str, Any]):
        note = self._own_note(message)
        if note is None:
            return InvalidInputMessage("There is no such note.")
        notes.delete_note(note=note, by=user)
        return None


class InvalidInputMessage:
    """A refusal that is not a form's errors (a note that is not there, not yours)."""

    def __init__(self, message: str):
        self.message = message


def _strings(data: dict[str, Any]) -> dict[str, str]:
    """Form data as a browser would send it: JSON numbers become text, and
    anything else that is not text is treated as missing."""
    cleaned = {}
    for key, value in data.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float | str):
            cleaned[key] = str(value)
    return cleaned
