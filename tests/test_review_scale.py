"""The review page of a long session shows the first notes of each kind and of
the timeline, says how many more the exports hold, and costs the same queries
with a few notes or thousands. The exports still hold everything."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions_app.models import Note
from sessions_app.review import KIND_LIMIT, TIMELINE_LIMIT
from tests.test_live_window import fill


def review_queries(client, session) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("review", kwargs={"session_id": session.pk}))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_review_page_of_a_long_session_is_cut_and_says_so(
    session, feature, facilitator, facilitator_client
):
    short = type(session).objects.create(
        feature=feature, title="Short", internal_tenant="internal", facilitator=facilitator
    )
    fill(short, 5, event_every=2)
    fill(session, 600, event_every=2)  # 540 visible observations

    few, _ = review_queries(facilitator_client, short)
    many, content = review_queries(facilitator_client, session)

    assert many == few
    assert "540 notes" in content
    assert "<h3>Observation (540)</h3>" in content
    assert f"… and {540 - KIND_LIMIT} more: the exports hold them all." in content
    assert content.count('class="note-text"') == KIND_LIMIT + TIMELINE_LIMIT
    assert "later entries: the exports hold the whole timeline." in content
    assert "Note 599" not in content  # past what the page shows


def test_the_exports_of_a_long_session_hold_every_note(session, facilitator_client):
    fill(session, 600)

    response = facilitator_client.get(reverse("export_json", kwargs={"session_id": session.pk}))

    notes = json.loads(b"".join(response) if response.streaming else response.content)["notes"]
    assert [note["seq"] for note in notes] == [s for s in range(1, 601) if s % 10]


def test_each_export_streams_every_note_once_past_its_batches(session, facilitator_client):
    fill(session, 1_200)  # 1,080 visible: past two batches of NOTE_BATCH
    Note.objects.filter(session=session, seq__gt=1_000).update(kind="bug")
    visible = [s for s in range(1, 1_201) if s % 10]
    bugs = [s for s in visible if s > 1_000]

    def body(name: str) -> str:
        response = facilitator_client.get(reverse(name, kwargs={"session_id": session.pk}))
        assert response.status_code == 200
        assert response.streaming
        return b"".join(response.streaming_content).decode()

    text = body("export_json")
    document = json.loads(text)
    assert [note["seq"] for note in document["notes"]] == visible
    # Written in parts, laid out as the whole document dumped at once.
    assert text == json.dumps(document, ensure_ascii=False, indent=2)

    rows = list(csv.reader(io.StringIO(body("export_csv"), newline="")))
    assert [int(row[0]) for row in rows[1:]] == visible

    md = body("export_md")
    assert md.endswith("\n") and not md.endswith("\n\n")
    listed = [int(seq) for seq in re.findall(r"^- #(\d+) ", md, re.MULTILINE)]
    # Bugs and friction first, then every note under its kind.
    assert listed == bugs + bugs + [s for s in visible if s <= 1_000]
    assert "### Observation" in md and "### Bug" in md


def close_connection() -> None:
    connection.close()  # this thread's, looked up here


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_an_export_is_sent_as_it_is_read(session, facilitator):
    await database_sync_to_async(fill)(session, 600)
    client = AsyncClient()
    await client.aforce_login(facilitator)

    response = await client.get(reverse("export_csv", kwargs={"session_id": session.pk}))

    # An async stream: daphne sends each part as it comes; a sync one Django
    # would gather whole first.
    assert response.status_code == 200 and response.is_async
    parts = [part async for part in response.streaming_content]
    assert len(parts) > 1
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode(), newline="")))
    assert [int(row[0]) for row in rows[1:]] == [s for s in range(1, 601) if s % 10]
    # The test client keeps Django from closing it after the request, as a
    # server does: the stream's thread gives its connection back here.
    await database_sync_to_async(close_connection)()
