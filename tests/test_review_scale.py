"""The review page of a long session shows the first notes of each kind and of
the timeline, says how many more the exports hold, and costs the same queries
with a few notes or thousands. The exports still hold everything."""

from __future__ import annotations

import json

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

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
