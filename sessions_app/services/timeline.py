"""The live timeline's write path: lock, number, store, then broadcast after commit.

The database is the truth. Every change gets the session's next revision in the
transaction that stores it, and is broadcast only once committed; a broadcast
is a hint that clients may miss, since they ask for everything after the last
revision they hold whenever they (re)connect or see a gap.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction

from sessions_app.db_thread import defer_broadcast
from sessions_app.live_fragments import event_payload
from sessions_app.models import EnsembleSession, Event


def group_name(session_id) -> str:
    return f"session-{session_id}"


def lock(session: EnsembleSession) -> EnsembleSession:
    """The session row, locked until the transaction ends: one writer at a time
    numbers the timeline. (SQLite serialises writers by itself.)"""
    return EnsembleSession.objects.select_for_update().get(pk=session.pk)


class Numbers(NamedTuple):
    seq: int
    revision: int
    status: str


def take_numbers(session_id) -> Numbers:
    """A new note's seq and revision, taken in one statement that also locks
    the session row until the transaction ends (as `lock` does) and reads its
    status. The caller raises, and so rolls the numbers back, if the session
    takes no notes."""
    meta = EnsembleSession._meta
    pk = meta.pk.get_db_prep_value(session_id, connection)
    with connection.cursor() as cursor:
        # UPDATE … RETURNING: PostgreSQL, and SQLite since 3.35.
        cursor.execute(
            f"UPDATE {meta.db_table} SET last_seq = last_seq + 1, revision = revision + 1 "
            f"WHERE {meta.pk.column} = %s RETURNING last_seq, revision, status",
            [pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise EnsembleSession.DoesNotExist(f"No session {session_id}.")
    return Numbers(*row)


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
