"""A graceful restart under daphne: live-room sockets are closed with 1012.

On SIGTERM daphne (4.2) drops every websocket without a close frame, and
autobahn, under it, refuses any close code an application asks for but 1000
and 3000–4999. So when the reactor shuts down, this closes each open websocket
with 1012 (Service Restart) itself: clients reconnect at once, through the
proxy to another process, and replay what they missed. Then it waits a moment
for the rooms' disconnects to run (presence, group membership)."""

from __future__ import annotations

import asyncio
import contextlib

SERVICE_RESTART = 1012
GRACE_SECONDS = 5


def close_websockets(reactor) -> None:
    from daphne.ws_protocol import WebSocketProtocol

    for reader in reactor.getReaders():
        protocol = getattr(reader, "protocol", None)
        if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
            # What sendClose() does once it has checked the code.
            protocol.sendCloseFrame(code=SERVICE_RESTART, isReply=False)


def on_daphne_shutdown(reactor) -> None:
    """Registers the graceful close as a step of the reactor's shutdown."""
    from twisted.internet import defer

    from sessions_app.consumers import rooms_closed
    from sessions_app.db_thread import drained

    async def settled() -> None:
        await rooms_closed(GRACE_SECONDS)
        # The database work the rooms queued must finish while the event loop
        # still runs: a write's broadcast after commit goes through the loop.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained(), GRACE_SECONDS)

    def close_then_wait():
        close_websockets(reactor)
        return defer.Deferred.fromFuture(asyncio.ensure_future(settled()))

    reactor.addSystemEventTrigger("before", "shutdown", close_then_wait)
