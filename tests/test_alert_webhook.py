"""A feature's alert webhook: monitoring posts there with the secret in the URL;
while a session is live each alert lands in its timeline (muted when about
another tenant), otherwise it waits on the feature page; it survives into the
review and the exports, turns into an error note in one click, and every bad
request is refused with its own status, storing nothing."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import Alert, EnsembleSession, Event, Feature, Note
from sessions_app.services import notes
from tests import alert_samples as samples
from tests.conftest import client_for
from tests.downloads import downloaded
from tests.factories import FeatureFactory, GoalFactory, SessionFactory

Status = EnsembleSession.Status
SCRIPT_TITLE = '<script>alert("pwned")</script> Export <b>failed</b>'


def hook_url(feature: Feature, token: str | None = None) -> str:
    return reverse(
        "alert_webhook",
        kwargs={"feature_id": feature.pk, "token": feature.alert_token if token is None else token},
    )


def post_alert(feature: Feature, body=None, *, raw: bytes | None = None, token=None, headers=None):
    """POST as a monitoring tool does: no session, no CSRF token."""
    client = Client(enforce_csrf_checks=True)
    data = raw if raw is not None else json.dumps(body)
    return client.post(
        hook_url(feature, token), data=data, content_type="application/json", headers=headers
    )


def stored() -> tuple:
    """Everything an alert could write."""
    return (
        Alert.objects.count(),
        Event.objects.count(),
        list(EnsembleSession.objects.order_by("pk").values_list("revision", flat=True)),
    )


def go_live(session: EnsembleSession, *, tenant: str = "acme-internal") -> EnsembleSession:
    EnsembleSession.objects.filter(pk=session.pk).update(
        status=Status.LIVE, started_at=timezone.now(), internal_tenant=tenant
    )
    session.refresh_from_db()
    return session


@pytest.fixture
def live_session(session) -> EnsembleSession:
    return go_live(session)


def page(client, name: str, **kwargs) -> str:
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 200
    return response.content.decode()


# --- Accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (
            samples.generic(),
            None,
            ("generic", "error", "Invoice export failed: timeout after 30 s", "globex", True),
        ),
        (
            samples.generic(tenant="ACME-Internal "),
            None,
            (
                "generic",
                "error",
                "Invoice export failed: timeout after 30 s",
                "ACME-Internal",
                False,
            ),
        ),
        (
            {"title": "Queue depth above 10,000", "level": "warning"},
            None,
            ("generic", "warning", "Queue depth above 10,000", "", False),
        ),
        (
            samples.sentry_issue_alert(level="fatal"),
            samples.SENTRY_ISSUE_HEADERS,
            (
                "sentry",
                "critical",
                "TimeoutError: Invoice export exceeded 30000 ms",
                "globex",
                True,
            ),
        ),
        (
            samples.sentry_metric_alert("warning"),
            samples.SENTRY_METRIC_HEADERS,
            ("sentry", "warning", "Warning: Invoice export error rate", "", False),
        ),
        (
            samples.sentry_plugin(),
            None,
            (
                "sentry",
                "warning",
                "Slow invoice export: 12.4 s for 480 invoices",
                "acme-internal",
                False,
            ),
        ),
        (
            samples.datadog_default(),
            None,
            ("datadog", "error", "[Triggered] Invoice export error rate above 5%", "", False),
        ),
        (
            samples.datadog_custom(alert_type="success", alert_transition="Recovered"),
            None,
            (
                "datadog",
                "info",
                "[Recovered] Invoice export p95 latency above 10 s",
                "acme-internal",
                False,
            ),
        ),
    ],
    ids=[
        "generic-other-tenant",
        "generic-our-tenant",
        "generic-no-tenant",
        "sentry-issue",
        "sentry-metric",
        "sentry-plugin",
        "datadog-default",
        "datadog-custom",
    ],
)
def test_an_alert_posted_while_a_session_is_live_lands_in_its_timeline(
    live_session, body, headers, expected
):
    shape, level, title, tenant, other_tenant = expected
    before = live_session.revision

    response = post_alert(live_session.feature, body, headers=headers)

    assert response.status_code == 202
    alert = Alert.objects.get()
    assert response.json() == {
        "alert": alert.pk,
        "level": level,
        "title": title,
        "live_sessions": [str(live_session.pk)],
    }
    assert (alert.shape, alert.level, alert.title, alert.tenant) == (shape, level, title, tenant)
    assert alert.feature == live_session.feature
    event = Event.objects.get()
    assert (event.session, event.kind, event.alert, event.summary) == (
        live_session,
        Event.Kind.ALERT,
        alert,
        title,
    )
    assert event.other_tenant is other_tenant
    live_session.refresh_from_db()
    assert event.revision == live_session.revision == before + 1


def test_an_alert_shows_in_the_live_room_timeline_with_level_link_and_source(
    live_session, teammate_client
):
    post_alert(
        live_session.feature, samples.sentry_issue_alert(), headers=samples.SENTRY_ISSUE_HEADERS
    )

    html = page(teammate_client, "live_room", session_id=live_session.pk)
    event = re.search(r'<div [^>]*class="event event-alert[^"]*".*?</div>', html, re.DOTALL)
    assert event, "no alert event in the timeline"
    assert "level-error" in event[0]
    assert "other-tenant" in event[0], "globex is not the session's tenant"
    assert "Error alert" in event[0]
    assert 'href="https://acme.sentry.io/issues/4512398761/events/9f1c2b7e5d8a4c6b/"' in event[0]
    assert "TimeoutError: Invoice export exceeded 30000 ms" in event[0]
    assert "Sentry" in event[0]
    assert "not our tenant" in event[0]
    assert 'id="live-alerts"' in html
    assert "Alerts (1)" in html


def test_every_live_session_of_the_feature_gets_the_alert_and_no_other(session, facilitator):
    first = go_live(session)
    second = go_live(SessionFactory(feature=session.feature, facilitator=facilitator))
    SessionFactory(feature=session.feature, facilitator=facilitator)  # still being planned
    elsewhere = go_live(SessionFactory(facilitator=facilitator))  # another feature's

    response = post_alert(session.feature, samples.generic())

    assert response.status_code == 202
    assert sorted(response.json()["live_sessions"]) == sorted([str(first.pk), str(second.pk)])
    alert = Alert.objects.get()
    assert sorted(Event.objects.values_list("session_id", "alert_id")) == sorted(
        [(first.pk, alert.pk), (second.pk, alert.pk)]
    )
    assert not Event.objects.filter(session=elsewhere).exists()


@pytest.mark.parametrize("status", [Status.PLANNING, Status.REVIEW, Status.DECIDED])
def test_an_alert_while_no_session_is_live_waits_on_the_feature_page(
    session, teammate_client, status
):
    EnsembleSession.objects.filter(pk=session.pk).update(status=status)

    response = post_alert(session.feature, samples.generic(title="Nightly export job failed"))

    assert response.status_code == 202
    assert response.json()["live_sessions"] == []
    assert Alert.objects.count() == 1
    assert Event.objects.count() == 0
    html = page(teammate_client, "feature_detail", feature_id=session.feature.pk)
    alerts = html[html.index('id="alerts"') :]
    assert "Nightly export job failed" in alerts
    assert "no session was live" in alerts
    assert "tenant globex" in alerts


def test_the_feature_page_names_the_live_session_an_alert_arrived_during(
    live_session, teammate_client
):
    post_alert(live_session.feature, samples.generic())
    html = page(teammate_client, "feature_detail", feature_id=live_session.feature.pk)
    alerts = html[html.index('id="alerts"') :]
    assert "Invoice export failed: timeout after 30 s" in alerts
    live_url = reverse("live_room", kwargs={"session_id": live_session.pk})
    assert f'during <a href="{live_url}">Bulk export walkthrough</a>' in alerts


def test_members_see_the_alert_webhook_url_on_the_feature_page(feature, teammate_client):
    html = page(teammate_client, "feature_detail", feature_id=feature.pk)
    assert "Alert webhook URL" in html
    assert f'value="http://testserver{hook_url(feature)}"' in html
    assert "Regenerate the webhook URL" not in html, "only an owner regenerates it"


def test_an_alert_body_of_exactly_64_kb_is_accepted(feature):
    body = {"title": "Export failed", "padding": ""}
    body["padding"] = "x" * (64 * 1024 - len(json.dumps(body)))
    raw = json.dumps(body).encode()
    assert len(raw) == 64 * 1024

    assert post_alert(feature, raw=raw).status_code == 202
    assert Alert.objects.count() == 1


# --- Refused, storing nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [
        ({"token": "not-the-token"}, 404, "No alert webhook"),
        ({"raw": b'{"title": "Export failed",'}, 400, "not valid JSON"),
        ({"raw": b""}, 400, "not valid JSON"),
        ({"raw": b"title=Export+failed"}, 400, "not valid JSON"),
        ({"raw": '{"title": "Export f\xe4iled"}'.encode("latin-1")}, 400, "not valid JSON"),
        ({"body": {"message": "Export failed"}}, 422, "Unknown alert shape"),
        ({"body": {"title": ""}}, 422, "title"),
        ({"body": {"title": "Export failed", "level": "meltdown"}}, 422, "level"),
        ({"body": [samples.generic()]}, 422, "JSON object"),
        ({"body": None}, 422, "JSON object"),
        ({"body": {"title": "x" * (64 * 1024)}}, 413, "64 KB"),
    ],
    ids=[
        "wrong-token",
        "truncated-json",
        "empty-body",
        "form-encoded",
        "not-utf-8",
        "unknown-shape",
        "empty-title",
        "unknown-level",
        "a-list",
        "null",
        "over-64-kb",
    ],
)
def test_a_bad_alert_gets_its_status_and_stores_nothing(
    live_session, request_kwargs, status, message
):
    before = stored()

    response = post_alert(live_session.feature, **{"body": samples.generic(), **request_kwargs})

    assert response.status_code == status
    assert message in response.json()["error"]
    assert stored() == before


def test_an_unknown_feature_gets_404_and_stores_nothing(live_session):
    url = reverse(
        "alert_webhook",
        kwargs={"feature_id": uuid.uuid4(), "token": live_session.feature.alert_token},
    )
    response = Client().post(url, json.dumps(samples.generic()), content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"error": "No alert webhook at this address."}
    assert stored() == (0, 0, [live_session.revision])


def test_another_features_token_gets_404_and_stores_nothing(live_session, team):
    other = FeatureFactory(team=team)
    response = post_alert(live_session.feature, samples.generic(), token=other.alert_token)
    assert response.status_code == 404
    assert stored() == (0, 0, [live_session.revision])


def test_a_token_that_differs_by_its_last_character_or_its_case_gets_404(live_session):
    token = live_session.feature.alert_token
    for guess in (token[:-1], token[:-1] + ("A" if token[-1] != "A" else "B"), token.swapcase()):
        response = post_alert(live_session.feature, samples.generic(), token=guess)
        assert response.status_code == 404
    assert stored() == (0, 0, [live_session.revision])


def test_a_wrong_token_is_refused_before_the_body_is_looked_at(live_session):
    response = post_alert(live_session.feature, raw=b"x" * (65 * 1024), token="guess")
    assert response.status_code == 404


def test_a_body_declared_over_64_kb_is_refused_without_reading_it(live_session):
    url = hook_url(live_session.feature)
    response = Client().post(
        url,
        json.dumps(samples.generic()),
        content_type="application/json",
        CONTENT_LENGTH=str(10 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert stored() == (0, 0, [live_session.revision])


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_taken(live_session, method):
    response = getattr(Client(), method)(hook_url(live_session.feature))
    assert response.status_code == 405
    assert stored() == (0, 0, [live_session.revision])


# --- Rate limit --------------------------------------------------------------------------------


@override_settings(ALERTS_PER_MINUTE=3)
def test_a_flood_gets_429_with_retry_after_and_stores_nothing_more(live_session, team):
    for n in range(3):
        assert (
            post_alert(live_session.feature, samples.generic(title=f"Alert {n}")).status_code == 202
        )
    before = stored()

    response = post_alert(live_session.feature, samples.generic(title="One too many"))

    assert response.status_code == 429
    assert "at most 3 a minute" in response.json()["error"]
    assert 1 <= int(response["Retry-After"]) <= 61
    assert stored() == before
    assert not Alert.objects.filter(title="One too many").exists()
    # Another feature's webhook has its own allowance.
    other = FeatureFactory(team=team)
    assert post_alert(other, samples.generic()).status_code == 202


@override_settings(ALERTS_PER_MINUTE=3)
def test_the_webhook_takes_alerts_again_once_the_minute_has_passed(live_session):
    for n in range(3):
        post_alert(live_session.feature, samples.generic(title=f"Alert {n}"))
    assert post_alert(live_session.feature, samples.generic()).status_code == 429

    Alert.objects.update(received_at=timezone.now() - timedelta(seconds=61))

    assert post_alert(live_session.feature, samples.generic(title="Later")).status_code == 202
    assert Alert.objects.filter(title="Later").count() == 1


@override_settings(ALERTS_PER_MINUTE=3)
def test_retry_after_counts_until_the_oldest_alert_of_the_minute_leaves_it(live_session):
    for n in range(3):
        post_alert(live_session.feature, samples.generic(title=f"Alert {n}"))
    oldest = Alert.objects.order_by("received_at").first()
    Alert.objects.filter(pk=oldest.pk).update(received_at=timezone.now() - timedelta(seconds=50))

    response = post_alert(live_session.feature, samples.generic())

    assert response.status_code == 429
    assert 9 <= int(response["Retry-After"]) <= 12


# --- Nothing an alert carries is rendered as HTML --------------------------------------------


@pytest.fixture
def hostile_alert(live_session):
    body = samples.generic(
        title=SCRIPT_TITLE,
        source="<img src=x onerror=alert(1)>",
        tenant='"><svg onload=alert(2)>',
        url="javascript:alert(3)",
    )
    assert post_alert(live_session.feature, body).status_code == 202
    return live_session


def assert_escaped(html: str) -> None:
    assert "<script>alert" not in html
    assert "<b>failed</b>" not in html
    assert "<img src=x" not in html
    assert "<svg onload" not in html
    assert "javascript:alert(3)" not in html
    assert (
        "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; Export &lt;b&gt;failed&lt;/b&gt;"
        in html
    )


def test_an_alert_title_is_escaped_on_the_feature_page(hostile_alert, teammate_client):
    assert_escaped(page(teammate_client, "feature_detail", feature_id=hostile_alert.feature.pk))


def test_an_alert_title_is_escaped_in_the_live_room(hostile_alert, teammate_client):
    html = page(teammate_client, "live_room", session_id=hostile_alert.pk)
    assert_escaped(html)
    assert html.count("&lt;script&gt;alert(") >= 2, "in the timeline and in the alerts panel"


def test_an_alert_title_is_escaped_on_the_review_page(hostile_alert, facilitator):
    EnsembleSession.objects.filter(pk=hostile_alert.pk).update(status=Status.REVIEW)
    html = page(client_for(facilitator), "review", session_id=hostile_alert.pk)
    assert_escaped(html)
    section = html[html.index('<section id="alerts"') :]
    assert "Alerts during the session (1)" in section


# --- One click: an alert becomes an error note -----------------------------------------------


def alert_event(session: EnsembleSession, body=None) -> Event:
    assert post_alert(session.feature, body or samples.generic()).status_code == 202
    return Event.objects.filter(session=session, kind=Event.Kind.ALERT).latest("revision")


def note_url(session, event) -> str:
    return reverse("live_alert_note", kwargs={"session_id": session.pk, "event_id": event.pk})


def test_an_alert_becomes_an_error_note_linked_to_the_chosen_goal(
    live_session, teammate, teammate_client
):
    goal = GoalFactory(session=live_session, author=teammate, text="Export 500 invoices")
    event = alert_event(live_session)

    response = teammate_client.post(note_url(live_session, event), {"goal": goal.pk})

    assert response.status_code == 302
    assert response["Location"] == reverse("live_room", kwargs={"session_id": live_session.pk})
    note = Note.objects.get()
    assert (note.kind, note.author, note.goal, note.seq) == ("error", teammate, goal, 1)
    assert note.client_id == f"alert-{event.pk:06d}"
    assert note.text.splitlines() == [
        "Error alert: Invoice export failed: timeout after 30 s",
        "https://logs.acme.example/search?q=invoice-export%20timeout",
        "(Loki, tenant globex)",
    ]
    html = page(teammate_client, "live_room", session_id=live_session.pk)
    assert "Written up as error #1" in html
    assert "Alert written up as error #1." in html


def test_an_alert_becomes_a_note_without_a_goal_too(live_session, teammate_client):
    event = alert_event(live_session, {"title": "Disk 91% full on db-2"})
    assert teammate_client.post(note_url(live_session, event)).status_code == 302
    note = Note.objects.get()
    assert (note.goal, note.text) == (None, "Error alert: Disk 91% full on db-2")


def test_a_second_click_on_the_same_alert_stores_one_note(live_session, teammate_client):
    event = alert_event(live_session)
    teammate_client.post(note_url(live_session, event))
    revision = EnsembleSession.objects.get(pk=live_session.pk).revision

    response = teammate_client.post(note_url(live_session, event))

    assert response.status_code == 302
    assert Note.objects.count() == 1
    assert EnsembleSession.objects.get(pk=live_session.pk).revision == revision


def test_a_click_by_someone_else_on_an_alert_already_noted_finds_that_note(
    live_session, teammate_client, facilitator_client
):
    event = alert_event(live_session)
    teammate_client.post(note_url(live_session, event))

    response = facilitator_client.post(note_url(live_session, event), follow=True)

    assert response.status_code == 200
    assert Note.objects.count() == 1
    assert "belongs to another note" not in response.content.decode()
    assert "Alert written up as error #1." in response.content.decode()


def test_an_htmx_click_gets_204(live_session, teammate_client):
    event = alert_event(live_session)
    response = teammate_client.post(note_url(live_session, event), headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert Note.objects.count() == 1


def test_a_goal_of_another_session_is_refused_and_no_note_stored(
    live_session, teammate, teammate_client, facilitator
):
    elsewhere = GoalFactory(session=SessionFactory(feature=live_session.feature), author=teammate)
    event = alert_event(live_session)

    response = teammate_client.post(
        note_url(live_session, event), {"goal": elsewhere.pk}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 422
    assert "valid choice" in response.content.decode()
    assert Note.objects.count() == 0


def test_an_event_that_is_not_an_alert_or_of_another_session_is_404(
    live_session, teammate_client, facilitator
):
    other = go_live(SessionFactory(feature=live_session.feature, facilitator=facilitator))
    alert_event(live_session)
    theirs = Event.objects.get(session=other)
    plain = Event.objects.create(
        session=live_session, revision=99, kind=Event.Kind.STARTED, summary="Session started"
    )
    for event in (theirs, plain):
        assert teammate_client.post(note_url(live_session, event)).status_code == 404
    assert Note.objects.count() == 0


def test_an_outsider_cannot_make_a_note_from_an_alert(live_session, outsider_client):
    event = alert_event(live_session)
    assert outsider_client.post(note_url(live_session, event)).status_code == 404
    assert Note.objects.count() == 0


# --- Other tenants' alerts: the facilitator's choice -------------------------------------------


def tenants_url(session) -> str:
    return reverse("live_alert_tenants", kwargs={"session_id": session.pk})


def test_the_facilitator_chooses_to_hide_other_tenants_alerts(live_session, facilitator_client):
    alert_event(live_session)  # globex's
    assert 'data-other-tenants="mute"' in page(
        facilitator_client, "live_room", session_id=live_session.pk
    )

    response = facilitator_client.post(tenants_url(live_session), {"other_tenants": "hide"})

    assert response.status_code == 302
    live_session.refresh_from_db()
    assert live_session.other_tenant_alerts == "hide"
    html = page(facilitator_client, "live_room", session_id=live_session.pk)
    assert 'data-other-tenants="hide"' in html
    assert re.search(r'class="event event-alert [^"]*other-tenant', html)

    facilitator_client.post(tenants_url(live_session), {"other_tenants": "mute"})
    live_session.refresh_from_db()
    assert live_session.other_tenant_alerts == "mute"


def test_a_teammate_cannot_choose_for_other_tenants_alerts(live_session, teammate_client):
    response = teammate_client.post(tenants_url(live_session), {"other_tenants": "hide"})
    assert response.status_code == 403
    live_session.refresh_from_db()
    assert live_session.other_tenant_alerts == "mute"


@pytest.mark.parametrize("choice", ["", "delete", "HIDE"])
def test_a_choice_that_is_neither_mute_nor_hide_changes_nothing(
    live_session, facilitator_client, choice
):
    response = facilitator_client.post(tenants_url(live_session), {"other_tenants": choice})
    assert response.status_code == 400
    assert b"muted, or to hide them" in response.content
    live_session.refresh_from_db()
    assert live_session.other_tenant_alerts == "mute"


# --- The secret: regenerated by an owner ------------------------------------------------------


def regenerate_url(feature) -> str:
    return reverse("alert_token_regenerate", kwargs={"feature_id": feature.pk})


def test_an_owner_regenerates_the_webhook_url_and_the_old_one_stops_working(
    feature, facilitator_client
):
    old = feature.alert_token
    old_url = hook_url(feature)

    response = facilitator_client.post(regenerate_url(feature))

    assert response.status_code == 302
    assert response["Location"].endswith("#alerts")
    feature.refresh_from_db()
    assert feature.alert_token != old
    assert len(feature.alert_token) >= 32
    refused = Client().post(old_url, json.dumps(samples.generic()), content_type="application/json")
    assert refused.status_code == 404
    assert Alert.objects.count() == 0
    assert post_alert(feature, samples.generic()).status_code == 202
    html = page(facilitator_client, "feature_detail", feature_id=feature.pk)
    assert f'value="http://testserver{hook_url(feature)}"' in html
    assert old not in html


def test_a_teammate_cannot_regenerate_the_webhook_url(feature, teammate_client):
    old = feature.alert_token
    assert teammate_client.post(regenerate_url(feature)).status_code == 403
    feature.refresh_from_db()
    assert feature.alert_token == old


def test_an_outsider_cannot_regenerate_the_webhook_url(feature, outsider_client):
    old = feature.alert_token
    assert outsider_client.post(regenerate_url(feature)).status_code == 404
    feature.refresh_from_db()
    assert feature.alert_token == old


def test_every_feature_has_its_own_secret(team):
    tokens = {FeatureFactory(team=team).alert_token for _ in range(5)}
    assert len(tokens) == 5


# --- Kept for the review and the exports -------------------------------------------------------


@pytest.fixture
def reviewed_with_alerts(live_session, teammate):
    post_alert(live_session.feature, samples.generic())
    notes.post_note(
        session=live_session,
        author=teammate,
        data={"client_id": uuid.uuid4().hex, "kind": "bug", "text": "Export spins forever"},
    )
    post_alert(live_session.feature, samples.datadog_custom())
    post_alert(live_session.feature, {"title": "Plain <alert> & co", "level": "info"})
    EnsembleSession.objects.filter(pk=live_session.pk).update(status=Status.REVIEW)
    live_session.refresh_from_db()
    return live_session


def test_alerts_are_in_export_json_in_the_order_they_arrived(reviewed_with_alerts, teammate_client):
    response = teammate_client.get(
        reverse("export_json", kwargs={"session_id": reviewed_with_alerts.pk})
    )
    assert response.status_code == 200
    alerts = json.loads(downloaded(response))["alerts"]
    received = {a.title: a.received_at for a in Alert.objects.all()}
    assert [
        (
            a["level"],
            a["title"],
            a["url"],
            a["source"],
            a["tenant"],
            a["other_tenant"],
            a["after_seq"],
        )
        for a in alerts
    ] == [
        (
            "error",
            "Invoice export failed: timeout after 30 s",
            "https://logs.acme.example/search?q=invoice-export%20timeout",
            "Loki",
            "globex",
            True,
            0,
        ),
        (
            "error",
            "[Triggered] Invoice export p95 latency above 10 s",
            "https://app.datadoghq.eu/event/event?id=7710457263891234567",
            "Datadog",
            "acme-internal",
            False,
            1,
        ),
        ("info", "Plain <alert> & co", None, None, None, False, 1),
    ]
    for item in alerts:
        assert datetime.fromisoformat(item["received_at"]) == received[item["title"]]


def test_alerts_are_in_export_md_as_safe_text(reviewed_with_alerts, teammate_client):
    response = teammate_client.get(
        reverse("export_md", kwargs={"session_id": reviewed_with_alerts.pk})
    )
    assert response.status_code == 200
    md = downloaded(response)
    section = md[md.index("## Alerts") : md.index("## Notes by kind")]
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(lines) == 3
    assert lines[0].endswith(
        "Error: Invoice export failed: timeout after 30 s "
        "(https://logs.acme.example/search?q=invoice-export%20timeout), tenant globex "
        "(not our tenant)"
    )
    # Markdown in a title stays text: "[Triggered]" may be escaped, never a link.
    assert re.search(r"Error: \\?\[Triggered\\?\] Invoice export p95 latency above 10 s ", lines[1])
    assert lines[1].endswith(
        "(https://app.datadoghq.eu/event/event?id=7710457263891234567), tenant acme-internal"
    )
    assert lines[2].endswith("Info: Plain &lt;alert&gt; &amp; co")


def test_export_md_says_none_when_no_alert_arrived(live_session, teammate_client):
    md = teammate_client.get(reverse("export_md", kwargs={"session_id": live_session.pk}))
    text = downloaded(md)
    assert text[text.index("## Alerts") : text.index("## Notes by kind")].split() == [
        "##",
        "Alerts",
        "None.",
    ]


def test_the_review_lists_the_alerts_and_shows_them_in_the_timeline(
    reviewed_with_alerts, teammate_client
):
    html = page(teammate_client, "review", session_id=reviewed_with_alerts.pk)
    section = html[html.index('<section id="alerts"') : html.index('<section id="timeline"')]
    assert "Alerts during the session (3)" in section
    assert section.count('<li class="alert-item') == 3
    assert section.count('<li class="alert-item other-tenant"') == 1
    timeline = html[html.index('<section id="timeline"') :]
    assert "Error alert" in timeline
    assert "Invoice export failed: timeout after 30 s" in timeline
    assert "Plain &lt;alert&gt; &amp; co" in timeline


def test_an_alert_of_a_closed_session_cannot_become_a_note(live_session, teammate_client):
    event = alert_event(live_session)
    EnsembleSession.objects.filter(pk=live_session.pk).update(status=Status.DECIDED)

    response = teammate_client.post(note_url(live_session, event), follow=True)

    assert "This session is closed: it takes no more notes." in response.content.decode()
    assert Note.objects.count() == 0
