"""Live delivery: an alert posted to the feature's webhook reaches everyone
connected to the live room at once, as a timeline event and a fresh alerts
panel, with nothing it carries rendered as HTML."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from sessions_app.models import Event, Note
from tests import alert_samples as samples
from tests.conftest import client_for
from tests.live_room import (
    TIMEOUT,
    Room,
    Sockets,
    make_room,
    messages_until_synced,
    next_message,
)

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async

HOSTILE = '<img src=x onerror="alert(1)"> Export failed for <b>globex</b>'
ESCAPED = (
    "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Export failed for &lt;b&gt;globex&lt;/b&gt;"
)


@pytest.fixture
async def room() -> Room:
    return await db(make_room)()


@pytest.fixture
async def connect():
    sockets = Sockets()
    yield sockets.connect
    await sockets.close_all()


def post_alert(room: Room, body: dict, headers: dict | None = None):
    feature = room.session.feature
    url = reverse("alert_webhook", kwargs={"feature_id": feature.pk, "token": feature.alert_token})
    return Client().post(url, json.dumps(body), content_type="application/json", headers=headers)


async def panel(ws, panel_id: str) -> dict:
    """The next panel message with this id (others, such as presence, skipped)."""
    while True:
        message = await ws.receive_json_from(timeout=TIMEOUT)
        if message["type"] == "panel" and message["id"] == panel_id:
            return message


async def test_an_alert_reaches_everyone_in_the_live_room_as_an_escaped_timeline_event(
    room, connect
):
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)

    response = await db(post_alert)(room, samples.generic(title=HOSTILE))

    assert response.status_code == 202
    event = await db(Event.objects.get)(kind=Event.Kind.ALERT)
    for ws in (dana, sam):
        message = await next_message(ws)
        assert message["type"] == "event"
        assert (message["revision"], message["after_seq"]) == (event.revision, 0)
        html = message["html"]
        assert ESCAPED in html
        assert "<img" not in html
        assert "<b>globex</b>" not in html
        assert "event-alert" in html
        assert "level-error" in html
        assert "other-tenant" in html, "globex is not acme-internal"
        assert 'href="https://logs.acme.example/search?q=invoice-export%20timeout"' in html

        alerts = await panel(ws, "live-alerts")
        assert alerts["revision"] == event.revision
        assert "Alerts (1)" in alerts["html"]
        assert ESCAPED in alerts["html"]
        assert "<img" not in alerts["html"]
        assert "Make error note" in alerts["html"]


async def test_a_sentry_alert_about_our_own_tenant_arrives_unmuted(room, connect):
    sam = await connect(room, room.sam)
    tags = [["environment", "production"], ["tenant", "acme-internal"]]

    response = await db(post_alert)(
        room, samples.sentry_issue_alert(level="fatal", tags=tags), samples.SENTRY_ISSUE_HEADERS
    )

    assert response.status_code == 202
    message = await next_message(sam)
    assert message["type"] == "event"
    assert "TimeoutError: Invoice export exceeded 30000 ms" in message["html"]
    assert "level-critical" in message["html"]
    assert "Critical alert" in message["html"]
    assert "other-tenant" not in message["html"]


async def test_the_alerts_panel_sent_live_keeps_the_facilitators_tenant_choice(room, connect):
    dana = await connect(room, room.dana)

    await db(post_alert)(room, samples.datadog_custom())

    html = (await panel(dana, "live-alerts"))["html"]
    assert 'data-other-tenants="mute"' in html
    assert '<option value="mute" selected>' in html
    assert '<option value="hide"' in html


async def test_the_facilitators_choice_to_hide_other_tenants_reaches_everyone(room, connect):
    sam = await connect(room, room.sam)
    url = reverse("live_alert_tenants", kwargs={"session_id": room.session_id})

    response = await db(lambda: client_for(room.dana).post(url, {"other_tenants": "hide"}))()

    assert response.status_code == 302
    alerts = await panel(sam, "live-alerts")
    assert 'data-other-tenants="hide"' in alerts["html"]


async def test_an_alert_made_into_an_error_note_reaches_everyone(room, connect):
    dana = await connect(room, room.dana)
    await db(post_alert)(room, samples.generic(title="Export worker OOM-killed"))
    assert (await next_message(dana))["type"] == "event"
    await panel(dana, "live-alerts")
    event = await db(Event.objects.get)(kind=Event.Kind.ALERT)
    url = reverse("live_alert_note", kwargs={"session_id": room.session_id, "event_id": event.pk})

    response = await db(lambda: client_for(room.sam).post(url, headers={"HX-Request": "true"}))()

    assert response.status_code == 204
    note = await next_message(dana)
    assert note["type"] == "note"
    assert note["seq"] == 1
    assert 'data-kind="error"' in note["html"]
    assert "Error alert: Export worker OOM-killed" in note["html"]
    alerts = await panel(dana, "live-alerts")
    assert "Written up as error #1" in alerts["html"]
    assert "Make error note" not in alerts["html"]
    assert await db(Note.objects.count)() == 1


async def test_a_client_that_missed_the_alert_gets_it_in_the_replay(room, connect):
    await db(post_alert)(room, samples.generic(title=HOSTILE))

    sam = await connect(room, room.sam)
    await sam.send_json_to({"type": "hello", "since": 0})
    received = await messages_until_synced(sam)

    events = [m for m in received if m["type"] == "event"]
    assert len(events) == 1
    assert ESCAPED in events[0]["html"]
    assert "<img" not in events[0]["html"]
    alerts = next(m for m in received if m["type"] == "panel" and m["id"] == "live-alerts")
    assert "Alerts (1)" in alerts["html"]
