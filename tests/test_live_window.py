"""The live room holds the latest notes and loads older ones on demand: the page
costs the same with a few notes or thousands, and paging back through
"earlier" shows every note and event exactly once, in order."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions_app.live_fragments import LIVE_WINDOW, timeline
from sessions_app.models import EnsembleSession, Event, Note


def fill(session: EnsembleSession, notes: int, *, event_every: int = 0) -> None:
    """Notes 1..n (each tenth deleted), and an event after every `event_every`-th."""
    rows, events = [], []
    for seq in range(1, notes + 1):
        rows.append(
            Note(
                session=session,
                seq=seq,
                revision=seq,
                kind="observation",
                text=f"Note {seq}",
                client_id=uuid.uuid4().hex,
                deleted_at=session.created_at if seq % 10 == 0 else None,
            )
        )
        if event_every and seq % event_every == 0:
            events.append(
                Event(
                    session=session,
                    revision=notes + seq,
                    after_seq=seq,
                    kind=Event.Kind.GOAL_STATUS,
                    summary=f"Event after {seq}",
                )
            )
    Note.objects.bulk_create(rows)
    Event.objects.bulk_create(events)
    Event.objects.create(
        session=session, revision=10 * notes, after_seq=0, kind="started", summary="Started"
    )
    EnsembleSession.objects.filter(pk=session.pk).update(
        status=EnsembleSession.Status.LIVE, last_seq=notes, revision=10 * notes
    )


def walk(session: EnsembleSession) -> list[str]:
    """Every page from the latest back to the start, read in timeline order."""
    pages = []
    page = timeline(session)
    pages.append(page.items)
    while page.earlier is not None:
        page = timeline(session, before=page.earlier)
        pages.append(page.items)
    return [
        f"note {item.seq}" if kind == "note" else f"event {item.after_seq}"
        for items in reversed(pages)
        for kind, item in items
    ]


def test_paging_back_shows_every_note_and_event_once_in_order(session):
    fill(session, 2 * LIVE_WINDOW + 57, event_every=7)

    seen = walk(session)

    expected = ["event 0"]
    for seq in range(1, 2 * LIVE_WINDOW + 58):
        if seq % 10:
            expected.append(f"note {seq}")
        if seq % 7 == 0:
            expected.append(f"event {seq}")
    assert seen == expected


def test_a_short_session_is_one_page(session):
    fill(session, 30, event_every=4)

    page = timeline(session)

    assert page.earlier is None
    assert sum(kind == "note" for kind, _ in page.items) == 27


def test_the_latest_page_holds_the_window_and_says_where_earlier_starts(session):
    fill(session, LIVE_WINDOW * 2)

    page = timeline(session)

    notes = [item.seq for kind, item in page.items if kind == "note"]
    assert len(notes) == LIVE_WINDOW
    assert notes[-1] == LIVE_WINDOW * 2 - 1  # the last one is deleted
    assert page.earlier == notes[0]


def live_room_queries(client, session) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("live_room", kwargs={"session_id": session.pk}))
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("notes", [LIVE_WINDOW * 3])
def test_the_live_room_costs_the_same_queries_with_many_notes(
    notes, session, feature, facilitator, facilitator_client
):
    few = type(session).objects.create(
        feature=feature, title="Few", internal_tenant="internal", facilitator=facilitator
    )
    fill(few, 5, event_every=2)
    fill(session, notes, event_every=2)

    assert live_room_queries(facilitator_client, session) == live_room_queries(
        facilitator_client, few
    )
    content = facilitator_client.get(
        reverse("live_room", kwargs={"session_id": session.pk})
    ).content.decode()
    assert content.count('role="listitem"') == LIVE_WINDOW
    assert "Show earlier notes" in content


def test_earlier_answers_the_older_items_and_where_to_go_next(session, teammate_client):
    fill(session, LIVE_WINDOW + 40)
    url = reverse("live_earlier", kwargs={"session_id": session.pk})
    latest = timeline(session)

    response = teammate_client.get(url, {"before": latest.earlier})

    assert response.status_code == 200
    assert response["X-Earlier"] == ""
    body = response.content.decode()
    assert 'data-seq="1"' in body
    assert f'data-seq="{latest.earlier}"' not in body


def test_earlier_without_a_seq_is_a_clear_400(session, teammate_client):
    url = reverse("live_earlier", kwargs={"session_id": session.pk})

    response = teammate_client.get(url, {"before": "soon"})

    assert response.status_code == 400
    assert b"?before=<seq>" in response.content
