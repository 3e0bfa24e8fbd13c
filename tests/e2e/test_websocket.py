"""The live room's websocket, served by a real daphne: what a browser's client sees."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from sessions_app.consumers import FORBIDDEN, UNAUTHENTICATED


def cookie_of(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def close_code(url: str, origin: str, cookie: str = "") -> int:
    headers = {"Cookie": cookie} if cookie else {}
    with (
        connect(url, origin=origin, additional_headers=headers, open_timeout=10) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    return closed.value.rcvd.code


@pytest.fixture
def ws_url(app_server, session) -> str:
    return app_server.replace("http://", "ws://") + f"/ws/sessions/{session.pk}/"


def test_outsider_sees_the_forbidden_close_code(ws_url, app_server, outsider):
    # 4403, not a failed handshake (1006): the client must know not to retry.
    assert close_code(ws_url, app_server, cookie_of(outsider)) == FORBIDDEN


def test_anonymous_visitor_sees_the_unauthenticated_close_code(ws_url, app_server):
    assert close_code(ws_url, app_server) == UNAUTHENTICATED


def test_member_stays_connected(ws_url, app_server, teammate):
    headers = {"Cookie": cookie_of(teammate)}
    with connect(ws_url, origin=app_server, additional_headers=headers) as ws:
        # A refusal closes right after the handshake, before a pong could come back.
        assert ws.ping().wait(timeout=10)
        ws.send('{"type": "hello", "since": 0}')
        assert json.loads(ws.recv(timeout=10))["type"] in {"panel", "note", "event", "synced"}


def test_foreign_origin_fails_the_handshake(ws_url, teammate):
    with pytest.raises(InvalidStatus) as refused:
        connect(
            ws_url,
            origin="https://evil.example.com",
            additional_headers={"Cookie": cookie_of(teammate)},
        )
    assert refused.value.response.status_code == 403
