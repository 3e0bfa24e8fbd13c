"""The live room's websocket behind a real daphne, where the Origin check lives in
the ASGI stack: a cross-site handshake, or one without an Origin, is refused;
a socket whose login ends while it is open (logged out in another tab, the
session deleted) is closed with 4401 before it reads or writes anything more."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.contrib.sessions.models import Session
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sessions_app.consumers import UNAUTHENTICATED
from sessions_app.models import Note
from tests.e2e.test_websocket import cookie_of

TIMEOUT = 10


@pytest.fixture
def ws_url(app_server, session) -> str:
    return app_server.replace("http://", "ws://") + f"/ws/sessions/{session.pk}/"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://127.0.0.1.evil.example.com",
        "null",
    ],
)
def test_a_cross_site_handshake_is_refused_with_403(ws_url, teammate, origin):
    with pytest.raises(InvalidStatus) as refused:
        connect(
            ws_url,
            origin=origin,
            additional_headers={"Cookie": cookie_of(teammate)},
            open_timeout=TIMEOUT,
        )
    assert refused.value.response.status_code == 403


def test_a_handshake_without_an_origin_is_refused_with_403(ws_url, teammate):
    # websockets sends no Origin unless given one, as a non-browser client would.
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers={"Cookie": cookie_of(teammate)}, open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 403


def log_out_through_the_server(base_url: str, cookie: str) -> None:
    """What the Log out button in another tab of the same browser does."""
    page = urllib.request.Request(f"{base_url}/", headers={"Cookie": cookie})
    with urllib.request.urlopen(page, timeout=TIMEOUT) as response:
        csrf = re.search(r"csrftoken=([^;]+)", response.headers["Set-Cookie"]).group(1)
    logout = urllib.request.Request(
        f"{base_url}/accounts/logout/",
        data=urllib.parse.urlencode({"csrfmiddlewaretoken": csrf}).encode(),
        headers={"Cookie": f"{cookie}; csrftoken={csrf}"},
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.build_opener(NoRedirect).open(logout, timeout=TIMEOUT)
    assert answer.value.code == 302  # to the login page: logged out


def delete_session(cookie: str) -> None:
    Session.objects.filter(session_key=cookie.split("=", 1)[1]).delete()


def live_socket(ws_url: str, origin: str, cookie: str) -> ClientConnection:
    return connect(ws_url, origin=origin, additional_headers={"Cookie": cookie}, open_timeout=10)


def wait_for_pong(ws: ClientConnection) -> None:
    ws.send(json.dumps({"type": "ping"}))
    while json.loads(ws.recv(timeout=TIMEOUT))["type"] != "pong":
        pass


def closed_with(ws: ClientConnection) -> tuple[int, list[str]]:
    """The close code, and the types of what the server sent before it."""
    seen = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            seen.append(json.loads(ws.recv(timeout=TIMEOUT))["type"])
    return closed.value.rcvd.code, seen


@pytest.mark.parametrize("ending", ["logged-out-in-another-tab", "session-deleted"])
def test_a_socket_whose_login_ended_is_closed_with_4401_and_its_note_not_stored(
    ending, ws_url, app_server, session, teammate
):
    session.status = "live"
    session.save()
    cookie = cookie_of(teammate)
    with live_socket(ws_url, app_server, cookie) as ws:
        wait_for_pong(ws)
        if ending == "session-deleted":
            delete_session(cookie)
        else:
            log_out_through_the_server(app_server, cookie)

        ws.send(
            json.dumps(
                {"type": "note", "client_id": "after-logout-1", "kind": "bug", "text": "Late"}
            )
        )
        code, seen = closed_with(ws)

    assert code == UNAUTHENTICATED
    assert "ack" not in seen and "note" not in seen
    assert not Note.objects.exists()


def test_a_socket_whose_login_ended_gets_no_replay(ws_url, app_server, session, teammate):
    session.status = "live"
    session.save()
    Note.objects.create(
        session=session, seq=1, revision=1, kind="bug", text="Not for you", author=teammate
    )
    cookie = cookie_of(teammate)
    with live_socket(ws_url, app_server, cookie) as ws:
        wait_for_pong(ws)
        log_out_through_the_server(app_server, cookie)
        ws.send(json.dumps({"type": "hello", "since": 0}))
        code, seen = closed_with(ws)

    assert code == UNAUTHENTICATED
    assert "note" not in seen and "synced" not in seen
