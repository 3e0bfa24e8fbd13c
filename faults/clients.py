"""Clients of a live room: a websocket client that follows the same protocol as
the browser's (static/js/live.js), and the browser itself, driven by Playwright.

Both keep what they show the way a person would see it, so that the suite can
compare it with the database: every stored note once, in seq order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets

# As static/js/live.js.
HEARTBEAT_SECONDS = 15
SILENT_SECONDS = HEARTBEAT_SECONDS * 2.5
RESEND_AFTER_SECONDS = 10
MAX_IN_FLIGHT = 10
SYNC_TIMEOUT_SECONDS = 8
MAX_BACKOFF_SECONDS = 15
REFUSALS = {4401, 4403}
OPEN_SECONDS = 10


@dataclass
class Shown:
    """A note as a client shows it."""

    seq: int
    client_id: str
    text: str


@dataclass
class View:
    """What a client shows once the fault is over."""

    name: str
    connected: bool
    notes: list[Shown]
    pending: int
    reloaded: bool = False
    close_codes: list[int] = field(default_factory=list)


def text_of(html: str) -> str:
    """The note's text inside its rendered fragment (the suite's texts need no unescaping)."""
    start = html.index('class="note-text"')
    start = html.index(">", start) + 1
    return html[start : html.index("</p>", start)].strip()


class LiveClient:
    """A member's live client over the `websockets` library: an outbox resent
    until acknowledged, a replay from its revision on every (re)connect, a
    heartbeat, and reconnection with backoff and jitter after any close but a
    refusal."""

    def __init__(self, name: str, ws_url: str, origin: str, cookie: str):
        self.name, self.ws_url, self.origin, self.cookie = name, ws_url, origin, cookie
        self.revision = 0
        self.note_revisions: dict[int, int] = {}
        self.shown: dict[int, Shown] = {}
        self.outbox: dict[str, dict[str, Any]] = {}  # client id -> note, in typing order
        self.sent_at: dict[str, float] = {}
        self.typed: list[str] = []
        self.refused: list[dict] = []
        self.close_codes: list[int] = []
        self.drops: list[str] = []  # why each connection ended, for a failure's report
        self.connections = 0
        self.panels: dict[str, str] = {}
        self.ws: websockets.ClientConnection | None = None
        self.synced = False
        self.syncing = False
        self.sync_asked = 0.0
        self.last_heard = 0.0
        self.awake = asyncio.Event()
        self.awake.set()
        self.woke = asyncio.Event()
        self.attempt = 0
        self.first_sent: dict[str, float] = {}
        self.ack_seconds: list[float] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.connected_event = asyncio.Event()
        self.task: asyncio.Task | None = None

    # --- Life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"client {self.name}")

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.ws is not None:
            self.ws.transport.abort()

    @property
    def connected(self) -> bool:
        return self.synced and self.ws is not None and self.ws.state is websockets.State.OPEN

    async def until_connected(self, seconds: float) -> None:
        await asyncio.wait_for(self.connected_event.wait(), seconds)

    def freeze(self) -> None:
        """A laptop lid closed: nothing runs, nothing is read or sent."""
        self.awake.clear()
        self.reading.clear()

    def thaw(self) -> None:
        self.awake.set()
        self.reading.set()
        self.woke.set()

    def stop_reading(self) -> None:
        """A slow client: it stays connected but reads nothing more."""
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    # --- Writing ------------------------------------------------------------------------

    def type_note(self, text: str) -> None:
        client_id = uuid.uuid4().hex
        self.typed.append(text)
        self.outbox[client_id] = {
            "type": "note",
            "client_id": client_id,
            "kind": "observation",
            "text": text,
        }
        self._send_outbox()

    def _send_outbox(self) -> None:
        if not self.connected or not self.awake.is_set():
            return
        now = time.monotonic()
        in_flight = sum(1 for t in self.sent_at.values() if now - t < RESEND_AFTER_SECONDS)
        for client_id, note in list(self.outbox.items()):
            if in_flight >= MAX_IN_FLIGHT:
                break
            if now - self.sent_at.get(client_id, 0) < RESEND_AFTER_SECONDS:
                continue
            self.sent_at[client_id] = now
            self.first_sent.setdefault(client_id, now)
            in_flight += 1
            self._send(note)

    def _send(self, message: dict[str, Any]) -> None:
        ws = self.ws
        if ws is not None and ws.state is websockets.State.OPEN:
            # Fire and forget, as a browser's send(): a dead socket is noticed
            # by the receiving side or the heartbeat.
            asyncio.create_task(self._send_quietly(ws, json.dumps(message)))

    @staticmethod
    async def _send_quietly(ws: websockets.ClientConnection, text: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(text)

    # --- The connection -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self.awake.wait()
            try:
                ws = await websockets.connect(
                    self.ws_url,
                    origin=self.origin,
                    additional_headers={"Cookie": self.cookie},
                    open_timeout=OPEN_SECONDS,
                    ping_interval=None,  # a browser answers pings but sends none
                    close_timeout=2,
                    max_size=2**22,
                )
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI):
                ws = None
            if ws is not None:
                self.connections += 1
                if await self._session(ws) in REFUSALS:
                    return
            # Exponential backoff with full jitter; a completed replay resets it.
            ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2**self.attempt)
            self.attempt += 1
            await asyncio.sleep(0.25 + random.random() * ceiling)

    async def _session(self, ws: websockets.ClientConnection) -> int | None:
        self.ws = ws
        self.synced = False
        self.sent_at.clear()
        self.last_heard = time.monotonic()
        self._sync()
        heartbeat = asyncio.create_task(self._heartbeat(ws))
        try:
            while True:
                await self.reading.wait()
                raw = await ws.recv()
                self.last_heard = time.monotonic()
                await self.reading.wait()
                self._handle(json.loads(raw))
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            self.close_codes.append(code if code is not None else 1006)
            self.drops.append(f"{time.monotonic():.1f} {closed!r}")
            return code
        finally:
            heartbeat.cancel()
            self.ws = None
            self.synced = False
            self.connected_event.clear()
            ws.transport.abort()

    async def _heartbeat(self, ws: websockets.ClientConnection) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                # Woken early when the client thaws: timers overdue fire at once.
                await asyncio.wait_for(self.woke.wait(), HEARTBEAT_SECONDS)
            self.woke.clear()
            await self.awake.wait()
            now = time.monotonic()
            if now - self.last_heard > SILENT_SECONDS:
                # Silent for too long: dead even if no close came. Drop it.
                self.drops.append(f"{now:.1f} silent for {now - self.last_heard:.1f} s")
                ws.transport.abort()
                return
            if self.syncing and now - self.sync_asked > SYNC_TIMEOUT_SECONDS:
                self._sync()
            self._send({"type": "ping"})
            self._send_outbox()

    def _sync(self) -> None:
        self.syncing = True
        self.sync_asked = time.monotonic()
        self._send({"type": "hello", "since": self.revision})

    # --- Messages from the server -----------------------------------------------------------

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "note":
            self._apply_change(message)
        elif kind == "event":
            self._apply_change(message, note=False)
        elif kind == "panel":
            self.panels[message["id"]] = message["html"]
        elif kind == "synced":
            self.syncing = False
            self.revision = max(self.revision, message["revision"])
            self.synced = True
            self.attempt = 0
            self.connected_event.set()
            self._send_outbox()
        elif kind == "ack":
            if message["client_id"] in self.first_sent:
                sent = self.first_sent.pop(message["client_id"])
                self.ack_seconds.append(time.monotonic() - sent)
            self.outbox.pop(message["client_id"], None)
            self.sent_at.pop(message["client_id"], None)
            self._apply_change(message["note"])
            self._send_outbox()
        elif kind == "pong":
            if message.get("revision", 0) > self.revision and not self.syncing:
                self._sync()
        elif kind == "error" and message.get("client_id"):
            # The server will never take this note: live.js drops it from the
            # outbox too, so it counts as lost.
            self.outbox.pop(message["client_id"], None)
            self.refused.append(message)

    def _apply_change(self, message: dict[str, Any], *, note: bool = True) -> None:
        apply = self._apply_note if note else (lambda _: None)
        revision = message["revision"]
        if self.syncing:
            apply(message)
        elif revision == self.revision + 1:
            apply(message)
            self.revision = revision
        elif revision > self.revision + 1:
            apply(message)
            self._sync()

    def _apply_note(self, note: dict[str, Any]) -> None:
        seq = note["seq"]
        if self.note_revisions.get(seq, 0) >= note["revision"]:
            return
        self.note_revisions[seq] = note["revision"]
        if note.get("deleted"):
            self.shown.pop(seq, None)
        else:
            self.shown[seq] = Shown(seq, note.get("client_id") or "", text_of(note["html"]))

    # --- What it shows -----------------------------------------------------------------------

    def view(self) -> View:
        return View(
            name=self.name,
            connected=self.connected,
            notes=[self.shown[seq] for seq in sorted(self.shown)],
            pending=len(self.outbox),
            close_codes=list(self.close_codes),
        )


# --- The browser -------------------------------------------------------------------------------

READ_TIMELINE = """() => Array.from(document.querySelectorAll('#notes .note')).map((el) => ({
  seq: el.dataset.seq ? Number(el.dataset.seq) : null,
  clientId: el.dataset.clientId || '',
  pending: el.classList.contains('pending'),
  text: (el.querySelector('.note-text')?.textContent || '').trim(),
}))"""

# Every close the page's websockets see, by code: a page script cannot read its
# own client's closes, so the suite wraps the WebSocket constructor before the
# page's scripts run.
RECORD_CLOSES = """(() => {
  window.__closeCodes = [];
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener('close', (e) => window.__closeCodes.push(e.code));
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();"""


class BrowserClient:
    """A member in Chromium on the live room page, typing into the Note field."""

    def __init__(self, name: str, page, room_url: str):
        self.name, self.page, self.room_url = name, page, room_url
        self.typed: list[str] = []

    @classmethod
    async def open(cls, context, name: str, base_url: str, room_url: str, password: str):
        page = await context.new_page()
        await page.add_init_script(RECORD_CLOSES)
        await page.goto(f"{base_url}/accounts/login/")
        await page.get_by_label("Username").fill(name)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(f"{base_url}/")
        client = cls(name, page, room_url)
        await page.goto(room_url)
        await page.locator("#connection", has_text="Connected").wait_for(timeout=30_000)
        # Gone if the page is ever reloaded.
        await page.evaluate("window.__sameLoad = true")
        return client

    async def type_note(self, text: str) -> None:
        self.typed.append(text)
        field_ = self.page.get_by_label("Note", exact=True)
        await field_.fill(text)
        await field_.press("Enter")

    async def view(self) -> View:
        items = await self.page.evaluate(READ_TIMELINE)
        status = await self.page.locator("#connection").text_content()
        codes = await self.page.evaluate("window.__closeCodes || []")
        return View(
            name=f"{self.name} (browser)",
            connected=(status or "").strip().startswith("Connected"),
            notes=[Shown(i["seq"], i["clientId"], i["text"]) for i in items if not i["pending"]],
            pending=sum(1 for i in items if i["pending"]),
            reloaded=not await self.page.evaluate("window.__sameLoad === true"),
            close_codes=list(codes),
        )


# --- A network that can fail --------------------------------------------------------------------


class Link:
    """A TCP relay between a client and the server. `cut()` makes every connection
    through it go silent both ways, as a pulled cable or a dead Wi-Fi does: no
    close frame, no FIN, nothing. Connections made after the cut pass again."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self.server: asyncio.Server | None = None
        self.live: set[asyncio.Event] = set()  # one "cut" flag per connection
        self.held: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        for flag in self.live:
            flag.set()
        self.live.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        cut = asyncio.Event()
        self.live.add(cut)
        self.held += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if cut.is_set():
                    continue  # swallowed: the other side hears nothing, ever
                dst.write(data)
                await dst.drain()
            if not cut.is_set():
                dst.close()  # an ordinary close passes through

        with contextlib.suppress(OSError):
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.held:
            writer.transport.abort()
