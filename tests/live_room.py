"""A live room to test against: a team, a session that is live, and members who
connect to its websocket with a real session cookie, as a browser would."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from sessions_app.models import EnsembleSession, Membership
from tests.factories import (
    FeatureFactory,
    GoalFactory,
    MembershipFactory,
    SessionFactory,
    TeamFactory,
    UserFactory,
)

User = get_user_model()
# Long enough for a loaded CI machine: a wait only lasts this long when a test fails.
TIMEOUT = 10


@dataclass
class Room:
    session: EnsembleSession
    dana: Any  # the team's owner, who facilitates
    sam: Any  # a teammate
    erin: Any  # another teammate

    @property
    def session_id(self):
        return self.session.pk


def make_room(*, status: str = EnsembleSession.Status.LIVE) -> Room:
    team = TeamFactory(name="Acme")
    dana = UserFactory(username="dana")
    MembershipFactory(team=team, user=dana, role=Membership.Role.OWNER)
    sam = UserFactory(username="sam")
    MembershipFactory(team=team, user=sam)
    erin = UserFactory(username="erin")
    MembershipFactory(team=team, user=erin)
    feature = FeatureFactory(team=team, name="Bulk invoice export", flag_key="bulk-invoice-export")
    session = SessionFactory(
        feature=feature,
        title="Bulk export walkthrough",
        facilitator=dana,
        internal_tenant="acme-internal",
        status=status,
        started_at=timezone.now() if status != EnsembleSession.Status.PLANNING else None,
    )
    GoalFactory(session=session, author=sam, text="Export 500 invoices")
    return Room(session=session, dana=dana, sam=sam, erin=erin)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def communicator(session_id, cookie: str) -> WebsocketCommunicator:
    # Imported here: the origin validator reads ALLOWED_HOSTS when the app is
    # built, after pytest-django has added the test host.
    from config.asgi import application

    headers = [(b"cookie", cookie.encode()), (b"origin", b"http://testserver")]
    return WebsocketCommunicator(application, f"/ws/sessions/{session_id}/", headers=headers)


def fresh_channel_layer() -> None:
    """channels-redis keeps its receive state tied to the event loop that first
    received, and pytest-asyncio gives every test its own loop: each test
    starts with a new layer."""
    channel_layers.backends.clear()


class Sockets:
    """Members' connections to a room; all closed when the test ends."""

    def __init__(self) -> None:
        self.opened: list[WebsocketCommunicator] = []

    async def connect(self, room: Room, user) -> WebsocketCommunicator:
        ws = communicator(room.session_id, await database_sync_to_async(session_cookie)(user))
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        self.opened.append(ws)
        return ws

    async def close_all(self) -> None:
        for ws in self.opened:
            with contextlib.suppress(Exception):  # already closed by the server
                await ws.disconnect(timeout=TIMEOUT)


def new_client_id() -> str:
    return uuid.uuid4().hex


def note_message(text: str = "The export button is greyed out", **fields: Any) -> dict:
    return {"type": "note", "client_id": new_client_id(), "kind": "bug", "text": text, **fields}


async def next_message(ws: WebsocketCommunicator, *, skip=("panel",)) -> dict:
    """The next message of a type not in `skip`. Presence re-renders the room
    panel whenever someone comes or goes, at moments a test does not control."""
    while True:
        message = await ws.receive_json_from(timeout=TIMEOUT)
        if message["type"] not in skip:
            return message


async def messages_until_synced(ws: WebsocketCommunicator) -> list[dict]:
    """Everything up to and including `synced`, panels included."""
    received = []
    while not received or received[-1]["type"] != "synced":
        received.append(await ws.receive_json_from(timeout=TIMEOUT))
    return received


async def close_code(ws: WebsocketCommunicator) -> int:
    """The code the server closed the socket with (what it sent before is skipped)."""
    while True:
        output = await ws.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return output["code"]


async def still_open(ws: WebsocketCommunicator) -> None:
    """The socket still answers: a ping gets its pong."""
    await ws.send_json_to({"type": "ping"})
    assert (await next_message(ws))["type"] == "pong"


_PERSON = re.compile(
    r'<li class="(?P<where>present|away)">.*?<span class="person">(?P<name>[^<]+)</span>',
    re.DOTALL,
)


def presence_in(room_html: str) -> dict[str, bool]:
    """Who the room panel lists, and whether it shows them as here."""
    return {m["name"]: m["where"] == "present" for m in _PERSON.finditer(room_html)}
