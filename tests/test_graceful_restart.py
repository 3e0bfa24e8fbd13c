"""A graceful restart: SIGTERM to a daphne process closes its live-room sockets
with 1012 (Service Restart), so clients come back at once, instead of dropping
them without a close frame (config/shutdown.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from sessions_app.models import Presence
from tests.live_room import make_room, session_cookie
from tests.servers import database_url, listening_socket

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SECONDS = 30


@pytest.fixture
def server(transactional_db, tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env |= {"DATABASE_URL": database_url(), "ALLOWED_HOSTS": "127.0.0.1", "HTTPS_ONLY": "0"}
    log = tmp_path / "daphne.log"
    with listening_socket() as sock, log.open("w") as output:
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(sock.fileno())]
            + ["config.asgi:application"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=[sock.fileno()],
        )
    try:
        with urllib.request.urlopen(f"{base_url}/accounts/login/", timeout=SECONDS) as page:
            assert page.status == 200
        yield base_url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        print(log.read_text())  # shown when the test fails


def test_sigterm_closes_live_room_sockets_with_1012(server):
    base_url, process = server
    room = make_room()
    ws = connect(
        base_url.replace("http://", "ws://") + f"/ws/sessions/{room.session_id}/",
        origin=base_url,
        additional_headers={"Cookie": session_cookie(room.sam)},
        open_timeout=SECONDS,
    )
    with ws:
        ws.send('{"type": "hello", "since": 0}')
        while '"synced"' not in ws.recv(timeout=SECONDS):
            pass
        assert Presence.objects.filter(session=room.session, user=room.sam).exists()

        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=SECONDS)
        assert ws.close_code == 1012
        assert process.wait(timeout=SECONDS) == 0
