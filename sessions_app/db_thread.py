"""The live room's database work: a thread of its own, which keeps its
connection while the room is busy.

Channels' database_sync_to_async runs each call on the thread that all of a
process's database work shares, and closes the connection after each call
(the settings keep CONN_MAX_AGE at 0, since Django's request threads come and
go). The room calls the database for every note and every heartbeat, and
opening a connection each time (SQLite registers its functions, the pool
checks its connection with a round trip) was a fifth of a busy process's
time. This thread keeps its connection until it has had no work for
KEEP_SECONDS, and then gives it back: a connection does not age unnoticed,
and the pool checks it when it is taken again.

One thread, in order: the room's work is mostly Python, which holds the GIL,
so more threads only made them and the event loop wait on each other (under
the benchmark, four threads on PostgreSQL did worse than one, not better).

Writes go first: someone's note is not queued behind the room's bookkeeping
(heartbeats, presence, membership checks, replays), which can wait a few
milliseconds more. Writes among themselves, and the rest among themselves,
run in the order they came.

The broadcasts that work makes after its commit are handed back to the event
loop to send, rather than sent from the thread: sending from there would hold
the thread until the event loop got round to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.db import InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

KEEP_SECONDS = 1.0

Outbox = list[tuple[str, dict[str, Any]]]
_local = threading.local()


def defer_broadcast(group: str, message: dict[str, Any]) -> bool:
    """Keep `message` for the event loop to send to `group` once the current
    work returns, if this is work of on_db_thread's; else False."""
    outbox = getattr(_local, "outbox", None)
    if outbox is None:
        return False
    outbox.append((group, message))
    return True


def _work[T](work: Callable[..., T], *args: Any) -> T:
    try:
        return work(*args)
    except (OperationalError, InterfaceError):
        connection = connections["default"]
        if connection.in_atomic_block or (
            connection.connection is not None and connection.is_usable()
        ):
            raise
        # The server cut the connection (a restart, a failover, an
        # administrator): the transaction, if any, is gone, so the work runs
        # once more on a fresh connection. Every write of the room may run
        # twice: a note is found again by its client id.
        connection.close()
        _local.outbox = []
        return work(*args)


def _run[T](work: Callable[..., T], *args: Any) -> tuple[T | None, Exception | None, Outbox]:
    """The work's result or exception, and what it committed to broadcast
    (work that fails may have committed something first)."""
    _local.outbox = []
    try:
        return _work(work, *args), None, _local.outbox
    except Exception as error:
        return None, error, _local.outbox
    finally:
        _local.outbox = None


WRITE, OTHER = 0, 1


class _Thread:
    def __init__(self):
        # (WRITE or OTHER, arrival, job): writes first, then in arrival order.
        self.jobs: queue.PriorityQueue[tuple[int, int, Callable[[], None]]] = queue.PriorityQueue()
        self.arrivals = itertools.count()
        threading.Thread(target=self._serve, name="room-db", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                *_, job = self.jobs.get(timeout=KEEP_SECONDS)
            except queue.Empty:
                connections.close_all()  # quiet for a while: give it back
                *_, job = self.jobs.get()
            try:
                job()
            except Exception:  # the thread must outlive any one job
                logger.exception("Room database work failed outside its own handling.")

    def submit(self, call: Callable[[], Any], rank: int = OTHER) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(outcome: Any) -> None:
            if not future.done():  # its waiter may have been cancelled
                future.set_result(outcome)

        def job() -> None:
            outcome = call()
            # The loop is gone when its waiter was (a test's loop, a shutdown).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, outcome)

        self.jobs.put((rank, next(self.arrivals), job))
        return future


_thread: _Thread | None = None
_thread_lock = threading.Lock()
_in_flight: set[asyncio.Future] = set()


def _worker() -> _Thread:
    global _thread
    with _thread_lock:
        if _thread is None:
            _thread = _Thread()
        return _thread


async def on_db_thread[T](work: Callable[..., T], *args: Any, write: bool = False) -> T:
    """`work(*args)` on the room's database thread; then what it broadcast,
    sent in the order it was committed. A `write` goes ahead of other work."""
    future = _worker().submit(lambda: _run(work, *args), WRITE if write else OTHER)
    _in_flight.add(future)
    try:
        result, error, outbox = await future
    finally:
        _in_flight.discard(future)
    for group, message in outbox:
        await get_channel_layer().group_send(group, message)
    if error is not None:
        raise error
    return result  # type: ignore[return-value]


async def drained() -> None:
    """Returns once no work is queued or running (a graceful shutdown waits
    for it: a write's broadcast goes through the event loop)."""
    while _in_flight:
        await asyncio.wait(list(_in_flight))


async def release() -> None:
    """The thread gives its connection back now (at the end of a test, whose
    database is about to be emptied or dropped)."""
    await _worker().submit(connections.close_all)
