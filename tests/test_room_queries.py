"""What a note and a heartbeat cost the database, on the live room's hot path:
the same few queries however long the timeline, and a heartbeat without a
transaction (every open room sends one every 15 s). `make bench` measures the
time; these pin the counts it was measured with."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.consumers import SessionConsumer, _heartbeat, _if_allowed, _note_if_allowed
from sessions_app.db_thread import on_db_thread
from sessions_app.models import EnsembleSession, Note
from sessions_app.room_access import Login
from tests.live_room import make_room, new_client_id, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def statements(work, *args) -> list[str]:
    """The SQL `work(*args)` sent, run on the database thread as the room runs it."""
    with CaptureQueriesContext(connection) as captured:
        work(*args)
    return [query["sql"] for query in captured.captured_queries]


def setting_up(room_count_notes: int):
    room = make_room()
    login = Login(room.sam, session_cookie(room.sam).split("=", 1)[1])
    consumer = SessionConsumer()
    consumer.session_id = room.session_id
    if room_count_notes:
        Note.objects.bulk_create(
            Note(
                session_id=room.session_id,
                seq=n,
                revision=n,
                kind="observation",
                text=f"Earlier note {n}",
                author=room.dana,
                client_id=new_client_id(),
            )
            for n in range(1, room_count_notes + 1)
        )
        EnsembleSession.objects.filter(pk=room.session_id).update(
            last_seq=room_count_notes, revision=room_count_notes
        )
    return room, login, consumer


async def note_statements(notes_before: int, *, verified: bool = True) -> list[str]:
    room, login, consumer = await database_sync_to_async(setting_up)(notes_before)
    if verified:
        # As after the client's first hello: its login check verified the login.
        assert await on_db_thread(login.refusal, room.session_id) is None
    message = {"client_id": new_client_id(), "kind": "bug", "text": "Progress bar stuck at 99%"}
    return await on_db_thread(
        statements,
        _note_if_allowed,
        login,
        room.session_id,
        consumer._post_note,
        room.sam,
        message,
    )


async def test_a_note_costs_the_same_few_queries_however_long_the_timeline():
    first = await note_statements(0)
    later = await note_statements(2_000)
    assert len(later) == len(first)
    # Numbering (which locks the session row) and insert, under the condition
    # that the login still holds as verified: no check of its own. A resend's
    # client id is looked up only when the insert fails.
    if connection.vendor == "postgresql":
        # One statement numbers, inserts and commits: no transaction around it.
        assert len(first) == 1, first
        assert first[0].startswith("WITH numbers AS (UPDATE"), first
    else:
        # SQLite takes the numbers and inserts in a transaction of two
        # statements (BEGIN and COMMIT where the driver reports them).
        assert len(writes(first)) == 2, first


async def test_a_note_before_the_login_was_verified_checks_it_first():
    # A client's first hello verifies its login; a note sent before that
    # runs the sign-in and membership check first.
    first = await note_statements(0, verified=False)
    assert len(writes(first)) == (2 if connection.vendor == "postgresql" else 3), first
    assert first[0].startswith('SELECT u."password"'), first


def writes(sql: list[str]) -> list[str]:
    """Statements but BEGIN and COMMIT (which only some drivers report)."""
    return [one for one in sql if one.split()[0].upper() not in {"BEGIN", "COMMIT"}]


async def test_a_heartbeat_is_one_statement_and_three_when_it_renews_presence():
    room, login, _ = await database_sync_to_async(setting_up)(0)
    channel = "specific.heartbeat!test"
    await on_db_thread(_heartbeat, login, room.session_id, room.sam, channel, True)  # joins

    def heartbeat(write: bool) -> list[str]:
        return statements(
            _if_allowed,
            login,
            room.session_id,
            _heartbeat,
            login,
            room.session_id,
            room.sam,
            channel,
            write,
        )

    # The login check, which also reads the revision the answer carries.
    assert len(await on_db_thread(heartbeat, False)) == 1
    # Then the presence row's renewal and the check for vanished connections.
    renewing = await on_db_thread(heartbeat, True)
    assert len(renewing) == 3, renewing
    assert not any(sql.split()[0].upper() in {"BEGIN", "SAVEPOINT", "COMMIT"} for sql in renewing)
