"""Several daphne processes serve one deployment: two of them, on the test
database and one Redis, and members' websocket clients on either. A note
written through one process reaches the clients of the other, and a client that
connects later to the other is replayed what it missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from sessions_app.models import Note
from tests.live_room import Room, make_room, session_cookie
from tests.servers import database_url, listening_socket

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 30
RECV_SECONDS = 10


# --- Servers ---------------------------------------------------------------------------------
# As tests/e2e/conftest.py's app_server, but two, and with Redis.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """REDIS_URL when set (CI sets it); else a private, throwaway redis-server."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "Delivery across processes needs Redis: set REDIS_URL (CI does) "
            "or install redis-server."
        )
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    try:
        for line in server.stdout:  # until it says it is ready, or exits
            output.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError("redis-server did not start:\n" + "".join(output))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


class Servers:
    """Daphne processes started by one test, stopped at its end."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, count: int) -> list[str]:
        base_urls = []
        for index in range(count):
            log = self.logs / f"daphne-{index}.log"
            with listening_socket() as sock, log.open("w") as output:
                base_urls.append(f"http://127.0.0.1:{sock.getsockname()[1]}")
                process = subprocess.Popen(
                    [sys.executable, "-m", "daphne", "--fd", str(sock.fileno())]
                    + ["config.asgi:application"],
                    cwd=PROJECT_ROOT,
                    env=self.env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    pass_fds=[sock.fileno()],
                )
            self.started.append((process, log))
        # Started side by side; the first request to each waits in its backlog.
        for base_url in base_urls:
            try:
                with urllib.request.urlopen(
                    f"{base_url}/accounts/login/", timeout=START_SECONDS
                ) as response:
                    assert response.status == 200
            except (OSError, AssertionError) as error:
                raise RuntimeError(
                    f"{base_url} did not serve its login page ({error}).\n{self.output()}"
                ) from error
        return base_urls

    def stop(self) -> None:
        for process, _ in self.started:
            process.terminate()
        for process, _ in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name} ---\n{log.read_text()}" for _, log in self.started if log.exists()
        )


@pytest.fixture
def two_servers(transactional_db, redis_url, tmp_path) -> Iterator[tuple[str, str]]:
    """Two daphne processes serving the test database with one Redis channel layer.

    What the test writes must be committed for the servers to see it, hence the
    transactional database (flushed after each test, once the servers stopped)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env |= {
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "HTTPS_ONLY": "0",
        "PYTHONUNBUFFERED": "1",
    }
    servers = Servers(env, tmp_path)
    try:
        first, second = servers.start(2)
        yield first, second
    finally:
        servers.stop()
        # Shown by pytest only when the test fails.
        print(servers.output())


# --- Clients ------------------------------------------------------------------------------------


class Member:
    """A member's live client on one server."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws

    def send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def note(self, text: str) -> str:
        client_id = uuid.uuid4().hex
        self.send(type="note", client_id=client_id, kind="observation", text=text)
        return client_id

    def receive(self, skip=("panel",)) -> dict:
        while True:
            message = json.loads(self.ws.recv(timeout=RECV_SECONDS))
            if message["type"] not in skip:
                return message

    def hello(self, since: int = 0) -> list[dict]:
        """Says what it holds; returns what is replayed up to `synced` (no panels)."""
        self.send(type="hello", since=since)
        replayed = [self.receive()]
        while replayed[-1]["type"] != "synced":
            replayed.append(self.receive())
        return replayed


@pytest.fixture
def members() -> Iterator:
    """Connects a member to a server, as a browser on its page would."""
    with contextlib.ExitStack() as opened:

        def open_(base_url: str, room: Room, user) -> Member:
            ws = connect(
                base_url.replace("http://", "ws://") + f"/ws/sessions/{room.session_id}/",
                origin=base_url,
                additional_headers={"Cookie": session_cookie(user)},
                open_timeout=START_SECONDS,
            )
            return Member(opened.enter_context(ws))

        yield open_


# --- Tests --------------------------------------------------------------------------------------


def test_a_note_posted_on_one_process_reaches_a_client_on_the_other(two_servers, members):
    server_a, server_b = two_servers
    room = make_room()
    sam = members(server_a, room, room.sam)
    dana = members(server_b, room, room.dana)
    assert [m["type"] for m in sam.hello()] == ["synced"]
    assert [m["type"] for m in dana.hello()] == ["synced"]

    client_id = sam.note("Written through process A")
    got = [sam.receive(), sam.receive()]
    ack = next(m for m in got if m["type"] == "ack")
    assert (ack["client_id"], ack["note"]["seq"]) == (client_id, 1)
    seen = dana.receive()
    assert (seen["type"], seen["seq"], seen["client_id"]) == ("note", 1, client_id)
    assert "Written through process A" in seen["html"]

    # And back the other way.
    dana.note("Written through process B")
    seen = sam.receive(skip=("panel", "ack"))
    assert (seen["type"], seen["seq"]) == ("note", 2)
    assert "Written through process B" in seen["html"]


def test_a_client_connecting_later_to_the_other_process_is_replayed_the_notes(two_servers, members):
    server_a, server_b = two_servers
    room = make_room()
    sam = members(server_a, room, room.sam)
    sam.hello()
    ids = [sam.note("First, on A"), sam.note("Second, on A")]
    acks = [sam.receive(skip=("panel", "note")) for _ in ids]
    assert [a["note"]["seq"] for a in acks] == [1, 2]

    erin = members(server_b, room, room.erin)
    replayed = erin.hello(since=0)
    assert [(m["type"], m.get("seq"), m.get("client_id")) for m in replayed] == [
        ("note", 1, ids[0]),
        ("note", 2, ids[1]),
        ("synced", None, None),
    ]
    assert "First, on A" in replayed[0]["html"]
    assert replayed[-1]["revision"] == 2

    # One that already holds the first note is replayed only the second.
    late = members(server_b, room, room.dana)
    assert [m.get("seq") for m in late.hello(since=1)] == [2, None]


def test_notes_written_at_once_through_both_processes_get_gap_free_seqs_seen_by_everyone(
    two_servers, members
):
    server_a, server_b = two_servers
    room = make_room()
    sam = members(server_a, room, room.sam)
    dana = members(server_b, room, room.dana)
    sam.hello()
    dana.hello()

    per_member = 15  # within the per-connection burst
    for i in range(per_member):
        sam.note(f"sam {i}")
        dana.note(f"dana {i}")

    total = 2 * per_member
    for member in (sam, dana):
        acks, seqs = 0, []
        while acks < per_member or len(seqs) < total:
            message = member.receive()
            if message["type"] == "ack":
                acks += 1
            else:
                assert message["type"] == "note", message
                seqs.append(message["seq"])
        assert sorted(seqs) == list(range(1, total + 1)), "each note once, none missing"

    stored = list(Note.objects.filter(session=room.session).values_list("seq", flat=True))
    assert sorted(stored) == list(range(1, total + 1))
    for name in ("sam", "dana"):
        texts = Note.objects.filter(author__username=name).order_by("seq")
        assert [n.text for n in texts] == [f"{name} {i}" for i in range(per_member)]


def test_a_crowd_joining_a_room_at_once_all_get_its_broadcast(redis_url):
    """After a deploy everyone reconnects at the same moment: every join and
    every broadcast is a Redis command holding a connection of the pool, and
    redis-py 8 refused those past 100 at once ("Too many connections")."""
    from asgiref.sync import async_to_sync
    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    host = {"address": redis_url, **settings.REDIS_CONNECTION_OPTIONS}
    crowd = 300
    group = f"crowd-{uuid.uuid4().hex}"

    async def join_and_listen() -> list[dict]:
        layer = RedisChannelLayer(hosts=[host], capacity=1500, expiry=30)
        channels = [await layer.new_channel() for _ in range(crowd)]
        await asyncio.gather(*(layer.group_add(group, channel) for channel in channels))
        await layer.group_send(group, {"type": "room.broadcast", "text": "hello"})
        received = await asyncio.gather(*(layer.receive(channel) for channel in channels))
        await asyncio.gather(*(layer.group_discard(group, channel) for channel in channels))
        await layer.close_pools()
        return received

    received = async_to_sync(join_and_listen)()
    assert [message["text"] for message in received] == ["hello"] * crowd
