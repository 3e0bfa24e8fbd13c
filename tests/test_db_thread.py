"""The live room's database thread (sessions_app/db_thread.py): it keeps its
connection between calls, gives it back when asked, sends what its work
broadcast after the work and in commit order, and runs work again on a fresh
connection when the server cut the old one."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, transaction

from sessions_app.db_thread import on_db_thread, release
from sessions_app.services.timeline import broadcast, group_name

pytestmark = pytest.mark.django_db(transaction=True)
GROUP_OF = "b6d7f1f0-5d2c-4a4e-9a39-3a5c8f4e2b10"  # a session id; no row needed


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def held_connection():
    return connection.connection


def connect() -> None:
    # Not on_db_thread(connection.ensure_connection): that would bind the
    # method of this thread's connection, not the database thread's.
    connection.ensure_connection()


async def test_the_connection_is_kept_from_one_call_to_the_next():
    await on_db_thread(connect)
    first = await on_db_thread(held_connection)
    assert first is not None
    assert await on_db_thread(held_connection) is first


async def test_release_gives_the_connection_back():
    await on_db_thread(connect)
    await release()
    assert await on_db_thread(held_connection) is None


async def test_writes_go_ahead_of_other_work_and_each_kind_keeps_its_order():
    # The thread is held by a first piece of work while the rest queues up:
    # a heartbeat, a note, a presence update and an edit, in that order.
    holding, go_on = threading.Event(), threading.Event()
    ran: list[str] = []

    def hold() -> None:
        holding.set()
        assert go_on.wait(10)

    def work(name: str) -> None:
        ran.append(name)

    first = asyncio.ensure_future(on_db_thread(hold))
    assert await asyncio.to_thread(holding.wait, 10)
    # Started eagerly: each hands its work to the thread before the next starts.
    loop = asyncio.get_running_loop()
    queued = [
        asyncio.eager_task_factory(loop, on_db_thread(work, name, write=name.endswith("write")))
        for name in ("heartbeat", "note write", "presence", "edit write")
    ]
    go_on.set()
    await asyncio.gather(first, *queued)
    assert ran == ["note write", "edit write", "heartbeat", "presence"]


def note(revision: int) -> dict:
    return {"type": "note", "revision": revision, "seq": revision, "html": f"<li>{revision}</li>"}


async def listener() -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(GROUP_OF), channel)
    return channel


async def test_broadcasts_leave_after_the_work_in_the_order_committed():
    channel = await listener()

    def two_writes() -> str:
        for revision in (1, 2):
            with transaction.atomic():
                broadcast(GROUP_OF, note(revision))
        return "done"

    assert await on_db_thread(two_writes) == "done"
    layer = get_channel_layer()
    assert [(await layer.receive(channel))["revision"] for _ in range(2)] == [1, 2]


async def test_work_that_fails_after_a_commit_still_broadcasts_it_and_nothing_rolled_back():
    channel = await listener()

    def commit_then_fail() -> None:
        with transaction.atomic():
            broadcast(GROUP_OF, note(1))
        with transaction.atomic():
            broadcast(GROUP_OF, note(2))
            raise ValueError("after the first commit")

    with pytest.raises(ValueError, match="after the first commit"):
        await on_db_thread(commit_then_fail)
    await on_db_thread(lambda: broadcast(GROUP_OF, note(3)))  # outside a transaction: at once
    layer = get_channel_layer()
    assert [(await layer.receive(channel))["revision"] for _ in range(2)] == [1, 3]


async def test_work_runs_again_on_a_fresh_connection_when_the_server_cut_the_old_one():
    if connection.vendor != "postgresql":
        pytest.skip("Cutting a database connection needs PostgreSQL, which CI runs.")
    cut = await on_db_thread(backend_pid)

    def terminate(pid: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            return cursor.fetchone()[0]

    assert await database_sync_to_async(terminate)(cut)
    runs = []

    def work() -> int:
        runs.append(1)
        return backend_pid()

    assert await on_db_thread(work) != cut
    assert len(runs) == 2, "the first run met the cut connection; the second a fresh one"
