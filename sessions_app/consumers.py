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
import contextlib
import json
import logging
import time
import uuid
import weakref
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.utils import timezone

from sessions_app.db_thread import on_db_thread
from sessions_app.live_fragments import PANELS, event_payload, note_payload, panel_payload
from sessions_app.models import EnsembleSession, Event, Note
from sessions_app.room_access import FORBIDDEN, UNAUTHENTICATED, Login, is_member
from sessions_app.room_hub import hub_for
from sessions_app.services import notes, presence
from sessions_app.services.timeline import Guard, GuardFailed, group_name, room_message
from sessions_app.services.validation import InvalidInput

logger = logging.getLogger(__name__)

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
# A heartbeat's answer says the room's revision, and a client behind it asks
# for a replay. A note committed just before the heartbeat read the revision
# may still be on its way here: the answer waits this long for it, so a busy
# room is not replayed to every client at each heartbeat.
PONG_GRACE_SECONDS = 2
# Changes are committed in one order but may reach a process's consumers in
# another (two processes broadcast independently, through Redis). A client
# that sees revisions jump asks for a replay, so a change that arrives ahead
# of one still on its way waits up to this long for it before being sent.
REORDER_SECONDS = 0.5
# A connection's presence row is renewed by a heartbeat at most this often.
# Heartbeats come every 15 s and a row counts for PRESENCE_TIMEOUT (45 s), so
# every other heartbeat renews it, with one to spare; the one that renews also
# prunes the room's vanished connections.
PRESENCE_REFRESH_SECONDS = 20
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


class Refused:
    def __init__(self, code: int):
        self.code = code


def _if_allowed(login: Login, session_id, work, *args):
    """`work(*args)` if the user is still signed in and a member, else Refused:
    one trip to the database thread for both."""
    refusal = login.refusal(session_id)
    if refusal is not None:
        return Refused(refusal)
    return work(*args)


def _note_if_allowed(login: Login, session_id, post, user, message: dict[str, Any]):
    """As _if_allowed, a statement fewer: once the login was verified, the
    note's own insert checks that it still holds (Login.guard). A note refused
    for any reason runs the full check before anything is said about it: the
    login ended (closed with its code), or the note goes as any other would,
    with the errors it has (the login may merely have changed, its session
    saved again by another request)."""
    guard = login.guard()
    if guard is not None:
        try:
            return post(user, message, guard)
        except (GuardFailed, InvalidInput):
            # Invalid input is found before the insert: someone no longer in
            # the room hears nothing of what the room would have accepted.
            pass
    return _if_allowed(login, session_id, post, user, message, None)


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
    events = (
        Event.objects.filter(session=session, revision__gt=since)
        .select_related("alert")
        .order_by("revision")
    )
    # Panels change only with a revision (presence is broadcast on every
    # connect): a client already at the room's revision needs none of them,
    # which spares rendering every panel for each reconnecting client. One
    # behind, or ahead (a history the server no longer has), gets them all.
    panels = PANELS if revision != since or not since else ()
    return [
        *(note_payload(note) for note in changed),
        *(event_payload(event) for event in events),
        *(panel_payload(session, panel_id) for panel_id in panels),
        {"type": "synced", "revision": revision, "now": timezone.now().isoformat()},
    ]


def _join(session_id, user, channel_name: str) -> dict[str, Any] | None:
    session = EnsembleSession.objects.get(pk=session_id)
    return presence.join(session=session, user=user, channel_name=channel_name)


def _leave(session_id, channel_name: str) -> dict[str, Any] | None:
    return presence.leave(session_id=session_id, channel_name=channel_name)


def _heartbeat(
    login: Login, session_id, user, channel_name: str, write: bool
) -> tuple[int, dict | None]:
    """The room's revision (read by the login check that ran just before, in
    the same trip) and, when `write`, this connection's presence renewed."""
    room = (
        presence.heartbeat(session_id=session_id, user=user, channel_name=channel_name)
        if write
        else None
    )
    return login.revision, room


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
    # No channel layer is configured under this alias, so Channels gives the
    # connection no channel and no receive loop of its own: broadcasts reach
    # it through the process's room hub (room_hub.py says why).
    channel_layer_alias = "none: broadcasts come through the room hub"

    async def __call__(self, scope, receive, send) -> None:
        # Known to rooms_closed() for as long as the connection lasts.
        self.ended = asyncio.Event()
        _open_rooms.add(self)
        try:
            await super().__call__(scope, receive, send)
        finally:
            _open_rooms.discard(self)
            self.ended.set()

    async def connect(self) -> None:
        # This connection's name, for its presence row.
        self.channel_name = f"room.{uuid.uuid4().hex}"
        self.layer = get_channel_layer()
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
        if not await on_db_thread(is_member, user, self.session_id):
            await self.accept()
            await self.close(code=FORBIDDEN)
            return
        # Each later check asks whether this login still holds.
        self.login = Login(user, getattr(self.scope.get("session"), "session_key", None))
        self.group = group_name(self.session_id)
        self.rate = RateLimit()
        self.replays = RateLimit(REPLAY_BURST, REPLAYS_PER_SECOND)
        self.last_heard = time.monotonic()
        # The highest revision of a change sent to this client (broadcast,
        # replay or acknowledgement).
        self.sent_revision = 0
        self.pong: asyncio.Task | None = None
        # A heartbeat's answer waiting for the revision it carries to be sent.
        self.awaited: tuple[int, asyncio.Future] | None = None
        self.held: dict[int, list[str]] = {}
        self.release: asyncio.TimerHandle | None = None
        self.watchdog = asyncio.create_task(self._watch())
        await self.accept()
        # Broadcasts reach this connection through the process's room hub,
        # which may hand one over at any moment: so only once accepted. None is
        # missed in between: the client's hello, read after this, replays.
        self.hub = hub_for(self.layer)
        await self.hub.join(self.group, self)
        await self.announce(await on_db_thread(_join, self.session_id, user, self.channel_name))
        self.presence_renewed = time.monotonic()

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
        if getattr(self, "pong", None) is not None:
            self.pong.cancel()
        if getattr(self, "release", None) is not None:
            self.release.cancel()
        if hasattr(self, "hub"):
            await self.hub.leave(self.group, self)
            await self.announce(await on_db_thread(_leave, self.session_id, self.channel_name))

    async def announce(self, payload: dict[str, Any] | None) -> None:
        """Tell the room who is here now (presence is not part of the timeline)."""
        if payload is not None:
            await self.layer.group_send(self.group, room_message(self.group, payload))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch closes stale database connections before every
        # handler, in the one worker thread all database work shares: one hop
        # per recipient of each broadcast, queued behind the room's writes, was
        # the fan-out's largest cost. Every database call here goes through
        # on_db_thread, which looks after its connection itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def room_broadcast(self, event: dict[str, Any]) -> None:
        # Called by the room hub (room_hub.py), for each connection of the
        # room in this process. Encoded once by the sender (see room_message).
        if event["revision"] is None:
            await self.send(text_data=event["text"])
        else:
            await self.send_change(event["revision"], event["text"])

    async def send_change(self, revision: int, text: str) -> None:
        """Send a change (or the acknowledgement that carries one) in revision
        order: one ahead of a missing revision is held for REORDER_SECONDS."""
        if self.sent_revision and revision > self.sent_revision + 1:
            self.held.setdefault(revision, []).append(text)
            if self.release is None:
                self.release = asyncio.get_running_loop().call_later(
                    REORDER_SECONDS, lambda: asyncio.ensure_future(self.send_held(everything=True))
                )
            return
        self.advance(revision)
        await self.send(text_data=text)
        if self.held:
            await self.send_held()

    def advance(self, revision: int) -> None:
        """`revision` is sent: a heartbeat's answer waiting for it may go."""
        self.sent_revision = max(self.sent_revision, revision)
        if self.awaited is not None and self.sent_revision >= self.awaited[0]:
            if not self.awaited[1].done():
                self.awaited[1].set_result(None)
            self.awaited = None

    async def send_held(self, everything: bool = False) -> None:
        """The held changes that are next in order, or all of them once the
        wait is over (the client then replays what is still missing)."""
        while self.held:
            revision = min(self.held)
            if not everything and revision > self.sent_revision + 1:
                break
            texts = self.held.pop(revision)
            self.advance(revision)
            for text in texts:
                await self.send(text_data=text)
        if everything or not self.held:
            if self.release is not None:
                self.release.cancel()
            self.release = None

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
        except (ValueError, RecursionError):
            # Not JSON, an integer of more digits than Python converts, or
            # arrays nested deeper than the parser's recursion limit.
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
        payloads = await self._as_member(_replay, self.session_id, since)
        for payload in payloads or ():
            await self.send_json(payload)
        if payloads:
            self.advance(payloads[-1]["revision"])
            # The replay brought everything up to here; what is held above it
            # may now follow.
            await self.send_held()

    async def on_ping(self, message: dict[str, Any]) -> None:
        # Heartbeats come every few seconds: someone removed from the team stops
        # receiving the room within one of them, even if they never write.
        # Presence is renewed every PRESENCE_REFRESH_SECONDS, not at every
        # heartbeat: most heartbeats are then the login check alone.
        write = time.monotonic() - self.presence_renewed >= PRESENCE_REFRESH_SECONDS
        answer = await self._as_member(
            _heartbeat,
            self.login,
            self.session_id,
            self.scope["user"],
            self.channel_name,
            write,
        )
        if answer is None:
            return
        if write:
            self.presence_renewed = time.monotonic()
        revision, room = answer
        await self.announce(room)
        if self.pong is not None:
            self.pong.cancel()
        # Answered from a task of its own: the broadcasts it may wait for are
        # handled by this consumer, after this handler returns.
        self.pong = asyncio.create_task(self._pong(revision))

    async def _pong(self, revision: int) -> None:
        # The revision lets a client notice a lost broadcast even when nothing
        # else happens after it; one still on its way is given time to arrive.
        if self.sent_revision < revision:
            arrived = asyncio.get_running_loop().create_future()
            self.awaited = (revision, arrived)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived, PONG_GRACE_SECONDS)
        await self.send_json(
            {"type": "pong", "now": timezone.now().isoformat(), "revision": revision}
        )

    async def on_note(self, message: dict[str, Any]) -> None:
        client_id = message.get("client_id")
        result = await self._write(self._post_note, message, check=_note_if_allowed)
        if isinstance(result, InvalidInput):
            await self.error(_first_error(result), client_id=client_id, errors=_errors(result))
        elif isinstance(result, InvalidInputMessage):
            await self.error(result.message, client_id=client_id)
        elif isinstance(result, Unavailable):
            await self._reply(result)  # no client id: the client keeps it to resend
        elif result is not None:
            ack = {"type": "ack", "client_id": client_id, "note": result}
            await self.send_change(result["revision"], json.dumps(ack))

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
        is closed with 4403, and whoever's login ended with 4401, before they
        read or write anything more."""
        refusal = await on_db_thread(self.login.refusal, self.session_id)
        if refusal is None:
            return True
        await self.close(code=refusal)
        return False

    async def _as_member(self, work, *args, check=_if_allowed, write=False):
        """`work(*args)` in the worker thread, once the same trip has checked the
        user is still signed in and a member; if not, closes with 4401 or 4403
        and returns None."""
        result = await on_db_thread(check, self.login, self.session_id, work, *args, write=write)
        if isinstance(result, Refused):
            await self.close(code=result.code)
            return None
        return result

    async def _write(self, work, message: dict[str, Any], check=_if_allowed):
        """Run a write in a worker thread, after checking the user is still a member."""
        try:
            return await self._as_member(work, self.scope["user"], message, check=check, write=True)
        except InvalidInput as invalid:
            return invalid
        except PermissionDenied as denied:
            return InvalidInputMessage(str(denied) or "That is not yours to change.")
        except DatabaseError:
            # The database went away mid-write (a restart, a killed connection).
            # The transaction rolled back, so nothing is half-stored; the client
            # keeps the note in its outbox and sends it again. The next write
            # gets a fresh connection (on_db_thread drops broken ones).
            logger.warning("A write failed on a database error; the client will retry.")
            return Unavailable()

    async def _reply(self, result) -> None:
        if isinstance(result, InvalidInput):
            await self.error(_first_error(result), errors=_errors(result))
        elif isinstance(result, InvalidInputMessage):
            await self.error(result.message)
        elif isinstance(result, Unavailable):
            await self.error("Not stored yet: the server is busy; it is sent again.", retry=True)

    def _post_note(self, user, message: dict[str, Any], guard: Guard | None):
        # post_note reads the session itself, locked: no need to read it first.
        session = EnsembleSession(pk=self.session_id)
        data = {
            "client_id": message.get("client_id"),
            "kind": message.get("kind"),
            "text": message.get("text"),
            "goal": message.get("goal"),
        }
        note, created = notes.post_note(
            session=session, author=user, data=_strings(data), guard=guard
        )
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


# This process's open room connections (see rooms_closed).
_open_rooms: weakref.WeakSet[SessionConsumer] = weakref.WeakSet()


async def rooms_closed(seconds: float) -> None:
    """Wait, at most `seconds`, until every room connection of this process has
    ended: a graceful restart (config/shutdown.py) lets their disconnects run
    (presence, group membership) before the process exits."""
    waits = [asyncio.ensure_future(room.ended.wait()) for room in _open_rooms]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=seconds)
        for wait in pending:
            wait.cancel()


class Unavailable:
    """A write the database could not take just now."""


class InvalidInputMessage:
    """A refusal that is not a form's errors (a note that is not there, not yours)."""

    def __init__(self, message: str):
        self.message = message


def _strings(data: dict[str, Any]) -> dict[str, str]:
    """Form data as a browser would send it: JSON numbers become text, and
    anything else that is not text is treated as missing. A lone surrogate
    (JSON may escape one, "\\ud800"; UTF-8, and so the database, cannot hold
    it) becomes U+FFFD, as a browser's own encoder would make it."""
    cleaned = {}
    for key, value in data.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float | str):
            text = str(value)
            cleaned[key] = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return cleaned
