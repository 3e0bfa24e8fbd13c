"""The live room's websocket: who may connect to /ws/sessions/<uuid>/."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from sessions_app.consumers import FORBIDDEN, UNAUTHENTICATED
from tests.factories import MembershipFactory, SessionFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def session_cookie_of_member(*, member: bool):
    """A real session cookie for a user, and a session of a team they are or are not in."""
    team = TeamFactory()
    user = UserFactory()
    MembershipFactory(team=team if member else TeamFactory(), user=user)
    session = SessionFactory(feature__team=team)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}", session


def communicator(session_id, *, cookie: str = "", origin: str | None = "http://testserver"):
    # Imported here: the origin validator reads ALLOWED_HOSTS when the app is built,
    # after pytest-django has added the test host.
    from config.asgi import application

    headers = [(b"cookie", cookie.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(application, f"/ws/sessions/{session_id}/", headers=headers)


async def test_member_connects():
    cookie, session = await session_cookie_of_member(member=True)
    ws = communicator(session.pk, cookie=cookie)
    connected, _ = await ws.connect()
    assert connected
    await ws.disconnect()


async def closed_with(ws: WebsocketCommunicator) -> int:
    """Refusals are accepted and then closed, so the client sees the close code."""
    connected, _ = await ws.connect()
    assert connected
    message = await ws.receive_output()
    assert message["type"] == "websocket.close"
    return message["code"]


async def test_member_of_another_team_is_refused_with_4403():
    cookie, session = await session_cookie_of_member(member=False)
    assert await closed_with(communicator(session.pk, cookie=cookie)) == FORBIDDEN


async def test_anonymous_visitor_is_refused_with_4401():
    _, session = await session_cookie_of_member(member=True)
    assert await closed_with(communicator(session.pk)) == UNAUTHENTICATED


async def test_foreign_origin_is_refused():
    cookie, session = await session_cookie_of_member(member=True)
    ws = communicator(session.pk, cookie=cookie, origin="https://evil.example.com")
    connected, _ = await ws.connect()
    assert not connected


async def test_missing_origin_is_refused():
    cookie, session = await session_cookie_of_member(member=True)
    ws = communicator(session.pk, cookie=cookie, origin=None)
    connected, _ = await ws.connect()
    assert not connected
