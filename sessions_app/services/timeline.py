"""The live timeline's write path: lock, number, store, then broadcast after commit.

The database is the truth. Every change gets the session's next revision in the
transaction that stores it, and is broadcast only once committed; a broadcast
is a hint that clients may miss, since they ask for everything after the last
revision they hold whenever they (re)connect or see a gap.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from functools import cache
from typing import Any, NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.db.models import Field

from sessions_app.db_thread import defer_broadcast
from sessions_app.live_fragments import event_payload
from sessions_app.models import EnsembleSession, Event, Note


def group_name(session_id) -> str:
    return f"session-{session_id}"


def lock(session: EnsembleSession) -> EnsembleSession:
    """The session row, locked until the transaction ends: one writer at a time
    numbers the timeline. (SQLite serialises writers by itself.)"""
    return EnsembleSession.objects.select_for_update().get(pk=session.pk)


class Guard(NamedTuple):
    """A condition a write is made under, in SQL that may name the locked
    session row `e` (room_access.Login.guard: the writer still signed in and
    a member), so it costs no statement of its own."""

    sql: str
    params: list[Any]


class GuardFailed(Exception):
    """A write's guard did not hold: nothing was stored."""


def store_numbered(note: Note, *, open_statuses: Iterable[str], guard: Guard | None = None) -> bool:
    """Store a new note with its session's next seq and revision, if the
    session's status is one of `open_statuses` and the guard holds; else
    store nothing and return False. The session row is locked while it is
    numbered: one writer at a time numbers the timeline.

    Every statement of a note is one the whole room waits behind, so on
    PostgreSQL this is one statement that numbers and inserts at once (an
    UPDATE … RETURNING in a WITH, feeding the INSERT), and outside a
    transaction it commits by itself: one round trip instead of BEGIN,
    UPDATE, INSERT and COMMIT. SQLite has no UPDATE inside WITH; there it is
    the UPDATE … RETURNING and the insert in one transaction (SQLite
    serialises writers by itself)."""
    statuses = [str(status) for status in open_statuses]
    session_id = EnsembleSession._meta.pk.get_db_prep_value(note.session_id, connection)
    guard = guard or Guard("1 = 1", [])
    if connection.vendor != "postgresql":
        with transaction.atomic():
            numbers = _take_numbers(session_id, statuses, guard)
            if numbers is None:
                return False
            note.seq, note.revision = numbers
            note.save(force_insert=True)
        return True
    fields = _inserted_fields()
    values = [field.get_db_prep_save(field.pre_save(note, True), connection) for field in fields]
    # In a caller's transaction (a test's, a view's), a savepoint: a refused
    # insert (a resent client id) must not break the transaction around it.
    savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(
            _numbered_insert(len(statuses), guard.sql),
            [session_id, *statuses, *guard.params, *values],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    note.pk, note.seq, note.revision = row
    note._state.adding, note._state.db = False, connection.alias
    return True


def _take_numbers(session_id, statuses: list[str], guard: Guard) -> tuple[int, int] | None:
    """The session's next seq and revision, taken in one statement that also
    locks its row until the transaction ends; None if it is not open or the
    guard does not hold."""
    with connection.cursor() as cursor:
        # UPDATE … RETURNING: SQLite since 3.35.
        cursor.execute(
            f"{_numbering(len(statuses), guard.sql)} RETURNING last_seq, revision",
            [session_id, *statuses, *guard.params],
        )
        return cursor.fetchone()


def _numbering(status_count: int, guard: str) -> str:
    """The UPDATE that takes a session's next numbers, if its status is one of
    `status_count` and `guard` holds (the row is `e` to the guard)."""
    q = connection.ops.quote_name
    session = EnsembleSession._meta
    return (
        f"UPDATE {q(session.db_table)} AS e SET last_seq = last_seq + 1, revision = revision + 1"
        f" WHERE e.{q(session.pk.column)} = %s"
        f" AND e.status IN ({', '.join(['%s'] * status_count)}) AND {guard}"
    )


def _inserted_fields() -> list[Field]:
    """A note's columns but its id and numbers, in the order _numbered_insert names them."""
    numbers = {"id", "seq", "revision"}
    return [field for field in Note._meta.concrete_fields if field.attname not in numbers]


@cache
def _numbered_insert(status_count: int, guard: str) -> str:
    q = connection.ops.quote_name
    note = Note._meta
    columns = ", ".join(q(field.column) for field in _inserted_fields())
    placeholders = ", ".join(["%s"] * len(_inserted_fields()))
    return (
        f"WITH numbers AS ({_numbering(status_count, guard)} RETURNING last_seq, revision)"
        f" INSERT INTO {q(note.db_table)} ({columns}, seq, revision)"
        f" SELECT {placeholders}, last_seq, revision FROM numbers"
        f" RETURNING {q(note.pk.column)}, seq, revision"
    )


def next_revision(locked: EnsembleSession) -> int:
    locked.revision += 1
    EnsembleSession.objects.filter(pk=locked.pk).update(revision=locked.revision)
    return locked.revision


def room_message(group: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer message that takes `payload` to everyone in a room:
    its JSON encoded once here, not once per recipient, the room's group (by
    which each process's room hub finds its recipients) and the revision of a
    change, by which each recipient sends changes in order."""
    change = payload["type"] in {"note", "event"}
    return {
        "type": "room.broadcast",
        "group": group,
        "revision": payload["revision"] if change else None,
        "text": json.dumps(payload),
    }


def broadcast(session_id, payload: dict[str, Any]) -> None:
    """Send to everyone in the live room once the transaction commits."""

    def send() -> None:
        group = group_name(session_id)
        message = room_message(group, payload)
        if not defer_broadcast(group, message):
            async_to_sync(get_channel_layer().group_send)(group, message)

    transaction.on_commit(send)


def record_event(
    locked: EnsembleSession, *, kind: str, summary: str, actor, **fields: Any
) -> Event:
    """Store an event in the timeline (inside the caller's transaction) and
    broadcast it. `fields` are the rest of the event's columns (an alert's)."""
    event = Event.objects.create(
        session=locked,
        revision=next_revision(locked),
        after_seq=locked.last_seq,
        kind=kind,
        summary=summary[:500],
        actor=actor,
        **fields,
    )
    broadcast(locked.pk, event_payload(event))
    return event
