"""The benchmark's clients: asyncio and the `websockets` client, one process.

A *room* is C clients on one websocket path; P of them post notes at a fixed
rate, and every client records when each note reaches it. Clients of the live
room behave as static/js/live.js does: they say `hello` with the last revision
they hold, apply changes by revision, ask for a replay when revisions jump or a
heartbeat's answer is ahead of them, and send a heartbeat every 15 s. Clients
of the floor and the ceiling only relay text, so what they miss stays missed.

Latency is measured from the moment a poster hands the note to its socket to
the moment another client of the room has parsed it (one clock, one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

HEARTBEAT_SECONDS = 15
SYNC_RETRY_SECONDS = 3
# A poster stays under the live room's per-connection rate limit (10/s).
POSTS_PER_CLIENT_PER_SECOND = 8
CONNECTS_AT_ONCE = 40
OPEN_TIMEOUT = 60
NOTE_TEXT = (
    "Exported 500 invoices from the internal tenant; the progress bar stopped at 99% "
    "for a few seconds, then the download started."
)

APP, FLOOR, CEILING = "app", "floor", "ceiling"


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Sent:
    room: int
    poster: int
    at: float


@dataclass
class Window:
    """The notes posted during one measured stretch, and what became of them."""

    rate_per_s: float
    sent: dict[str, Sent] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    delivered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    send_lag: list[float] = field(default_factory=list)
    refused: int = 0


class Client:
    def __init__(self, load: Load, room: int, index: int, url: str, origin: str, cookie: str):
        self.load, self.room, self.index = load, room, index
        self.url, self.origin, self.cookie = url, origin, cookie
        self.ws: ClientConnection | None = None
        self.seen: set[str] = set()  # client ids of notes held
        self.highest: dict[Any, int] = {}  # ordering: by seq (app) or per poster (relays)
        # The live room's client state, as live.js keeps it.
        self.revision = 0
        self.syncing = False
        self.synced = asyncio.Event()
        self.pongs = 0
        self.resyncs = 0
        self.gaps = 0  # replays asked for because revisions jumped
        self.closed_code: int | None = None
        self.tasks: list[asyncio.Task] = []

    async def open(self) -> None:
        self.ws = await connect(
            self.url,
            origin=self.origin,
            additional_headers={"Cookie": self.cookie} if self.cookie else None,
            compression=None,
            ping_interval=None,
            open_timeout=OPEN_TIMEOUT,
            max_size=2**22,
        )
        self.tasks.append(asyncio.create_task(self.read()))
        if self.load.kind == APP:
            self.sync()
            await asyncio.wait_for(self.synced.wait(), OPEN_TIMEOUT)
            self.tasks.append(asyncio.create_task(self.heartbeat()))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(message))

    # --- The live room's client ------------------------------------------------------------

    def sync(self) -> None:
        self.syncing = True
        self.synced.clear()
        self.resyncs += 1
        asyncio.ensure_future(self.send({"type": "hello", "since": self.revision}))
        asyncio.get_running_loop().call_later(SYNC_RETRY_SECONDS, self._sync_again, self.resyncs)

    def _sync_again(self, attempt: int) -> None:
        # A replay that never completed (refused by the rate limit, lost) is asked again.
        if self.syncing and self.resyncs == attempt and self.ws is not None:
            self.resyncs -= 1
            self.sync()

    def resync(self) -> None:
        if not self.syncing:
            self.sync()

    async def heartbeat(self) -> None:
        await asyncio.sleep(random.uniform(0, HEARTBEAT_SECONDS))
        while True:
            await self.send({"type": "ping"})
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def apply(self, message: dict[str, Any], now: float) -> None:
        revision = message["revision"]
        if self.syncing:
            self.hold(message, now)
        elif revision == self.revision + 1:
            self.hold(message, now)
            self.revision = revision
        elif revision > self.revision + 1:
            self.hold(message, now)
            if not self.syncing:
                self.gaps += 1
            self.resync()
        # A revision at or below ours is already here.

    def hold(self, message: dict[str, Any], now: float) -> None:
        if message.get("type") != "note":
            return
        self.note_arrived(message["client_id"], ("seq",), message["seq"], now, live=True)

    # --- Every kind of client -----------------------------------------------------------------

    def note_arrived(self, client_id: str, order_key: Any, order: int, now: float, live: bool):
        window = self.load.window
        sent = window.sent.get(client_id) if window else None
        if client_id in self.seen:
            if self.load.kind != APP and sent is not None:
                window.duplicates += 1
            return
        self.seen.add(client_id)
        if order < self.highest.get(order_key, 0) and sent is not None:
            window.out_of_order += 1
        self.highest[order_key] = max(order, self.highest.get(order_key, 0))
        if sent is None or sent.poster == self.index:
            return
        window.delivered += 1
        window.latencies.append(now - sent.at)

    async def read(self) -> None:
        assert self.ws is not None
        kind = self.load.kind
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                if kind != APP:
                    self.note_arrived(
                        message["client_id"], message["poster"], message["n"], now, live=True
                    )
                    continue
                match message.get("type"):
                    case "note" | "event":
                        self.apply(message, now)
                    case "synced":
                        self.syncing = False
                        self.revision = max(self.revision, message["revision"])
                        self.synced.set()
                    case "pong":
                        self.pongs += 1
                        if message["revision"] > self.revision:
                            self.resync()
                    case "ack":
                        self.apply(message["note"], now)
                    case "error":
                        if not message.get("retry") and self.load.window is not None:
                            self.load.window.refused += 1
        except ConnectionClosed as closed:
            self.closed_code = closed.rcvd.code if closed.rcvd else None


class Load:
    """Rooms of connected clients, and the notes their posters write."""

    def __init__(self, kind: str, *, posters: int):
        self.kind = kind
        self.posters = posters
        self.rooms: list[list[Client]] = []
        self.window: Window | None = None
        self.connect_seconds = 0.0
        self.counter = itertools.count()
        self.run_id = uuid.uuid4().hex[:8]

    async def connect(self, rooms: list[tuple[list[str], str]], cookies: list[str]) -> None:
        """rooms: for each room, the URL of each of its clients (spread over the
        servers) and the Origin to send; client i signs in as user i."""
        gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

        async def open_(client: Client) -> None:
            async with gate:
                await client.open()

        new = []
        for urls, origin in rooms:
            room = len(self.rooms)
            clients = [
                Client(self, room, index, url, origin, cookies[index % len(cookies)])
                for index, url in enumerate(urls)
            ]
            self.rooms.append(clients)
            new.extend(clients)
        await asyncio.gather(*(open_(client) for client in new))

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for room in self.rooms for client in room))

    def message(self, room: int, poster: Client, client_id: str, n: int) -> dict[str, Any]:
        if self.kind == APP:
            return {
                "type": "note",
                "client_id": client_id,
                "kind": "observation",
                "text": NOTE_TEXT,
            }
        return {
            "type": "note",
            "client_id": client_id,
            "poster": poster.index,
            "n": n,
            "text": NOTE_TEXT,
        }

    async def post(self, rate_per_room: float, seconds: float, rooms: list[int]) -> None:
        """Each room's posters take turns at exact times (open loop: a late
        send is not made up for by a longer pause)."""
        window = self.window
        assert window is not None
        posters = max(self.posters, math.ceil(rate_per_room / POSTS_PER_CLIENT_PER_SECOND))
        interval = 1 / rate_per_room
        start = time.perf_counter() + 0.2

        async def room_loop(room: int) -> None:
            clients = self.rooms[room]
            offset = random.uniform(0, interval)
            for k in itertools.count():
                due = start + offset + k * interval
                if due - start >= seconds:
                    return
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                poster = clients[k % min(posters, len(clients))]
                n = next(self.counter)
                client_id = f"b{self.run_id}-{room}-{n}"
                now = time.perf_counter()
                window.send_lag.append(now - due)
                window.sent[client_id] = Sent(room=room, poster=poster.index, at=now)
                await poster.send(self.message(room, poster, client_id, n))

        await asyncio.gather(*(room_loop(room) for room in rooms))

    def expected(self) -> int:
        assert self.window is not None
        return sum(len(self.rooms[sent.room]) - 1 for sent in self.window.sent.values())

    async def drain(self, quiet: float) -> None:
        """Wait until every note reached every other client, or `quiet` seconds
        without progress; then a live room's clients each send a heartbeat, as
        they would within 15 s, and replay what its answer says they miss."""
        window = self.window
        assert window is not None
        expected = self.expected()
        last, since = -1, time.perf_counter()
        while window.delivered < expected and time.perf_counter() - since < quiet:
            if window.delivered != last:
                last, since = window.delivered, time.perf_counter()
            await asyncio.sleep(0.1)
        if self.kind != APP or window.delivered >= expected:
            return
        clients = [client for room in self.rooms for client in room]
        pongs = {client: client.pongs for client in clients}
        for client in clients:
            await client.send({"type": "ping"})
        deadline = time.perf_counter() + 20
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
            if all(c.pongs > pongs[c] and not c.syncing for c in clients):
                break

    def measure(self, rooms: list[int], rate_per_room: float) -> Window:
        self.window = Window(rate_per_s=rate_per_room * len(rooms))
        self.resyncs_before = self.resyncs()
        self.gaps_before = self.gaps()
        return self.window

    def resyncs(self) -> int:
        return sum(client.resyncs for room in self.rooms for client in room)

    def gaps(self) -> int:
        return sum(client.gaps for room in self.rooms for client in room)

    def report(self) -> dict[str, Any]:
        window = self.window
        assert window is not None
        expected = self.expected()
        ms = [latency * 1000 for latency in window.latencies]

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "rate_per_s": round(window.rate_per_s, 1),
            "notes": len(window.sent),
            "expected": expected,
            "delivered": window.delivered,
            "lost": expected - window.delivered,
            "duplicates": window.duplicates,
            "out_of_order": window.out_of_order,
            "p50_ms": rounded(percentile(ms, 0.50)),
            "p95_ms": rounded(percentile(ms, 0.95)),
            "p99_ms": rounded(percentile(ms, 0.99)),
            "max_ms": rounded(max(ms, default=None)),
            "refused": window.refused,
            "resyncs": self.resyncs() - self.resyncs_before,
            "resyncs_after_gap": self.gaps() - self.gaps_before,
            "client_send_lag_p99_ms": rounded((percentile(window.send_lag, 0.99) or 0) * 1000),
        }
