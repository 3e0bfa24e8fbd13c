"""Observing production, in real browsers against a real server: alerts posted
to a feature's webhook arrive in every open live room, and a feature's metric is
charted and fed by hand and by CSV."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import Page, expect

from sessions_app.models import (
    Decision,
    EnsembleSession,
    Event,
    Goal,
    Measurement,
    Metric,
    Note,
    Participant,
)
from tests.e2e.conftest import login
from tests.e2e.test_accessibility import assert_no_serious_violations
from tests.factories import PASSWORD, GoalFactory, ParticipantFactory

GOAL = "Exports of 5,000 invoices finish"
# Recorded in the browser when an alert with this title appears in the timeline.
WATCH_FOR_ALERT = """title => {
  const list = document.getElementById("notes");
  const seen = () => [...list.querySelectorAll(".event-alert .event-summary")].some(
    (el) => el.textContent.trim() === title);
  new MutationObserver((_, observer) => {
    if (seen()) { window.__alertSeenAt = Date.now(); observer.disconnect(); }
  }).observe(list, {childList: true, subtree: true});
}"""


@pytest.fixture
def axe() -> Axe:
    return Axe()


@pytest.fixture
def live_session(session, facilitator, teammate) -> EnsembleSession:
    """Live, with sam watching the logs. Rows are written directly: a service
    would broadcast from this process, whose thread Playwright occupies."""
    ParticipantFactory(session=session, user=facilitator, role=Participant.Role.DRIVER)
    ParticipantFactory(session=session, user=teammate, role=Participant.Role.LOG_WATCHER)
    GoalFactory(session=session, author=teammate, text=GOAL, must_cover=True)
    EnsembleSession.objects.filter(pk=session.pk).update(
        status=EnsembleSession.Status.LIVE, started_at=timezone.now(), internal_tenant="acme-qa"
    )
    session.refresh_from_db()
    return session


def post_alert(url: str, payload: dict) -> tuple[int, dict]:
    """What a monitoring tool does: a POST of JSON, from outside any browser."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def open_room(page: Page, base_url: str, username: str, session: EnsembleSession) -> None:
    login(page, base_url, username, PASSWORD)
    page.goto(f"{base_url}/sessions/{session.pk}/live/")
    expect(page.get_by_role("status")).to_have_text("Connected")


def test_an_alert_reaches_every_open_live_room_and_becomes_an_error_note(
    app_server, browser, live_session, csp_violations, axe
):
    dana = browser.new_context().new_page()
    sam_context = browser.new_context()
    sam_context.on(
        "console",
        lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    sam = sam_context.new_page()
    open_room(sam, app_server, "sam", live_session)
    open_room(dana, app_server, "dana", live_session)

    # Dana finds the webhook's address where the team would: on the feature page.
    other = dana.context.new_page()
    other.goto(f"{app_server}/features/{live_session.feature.pk}/")
    hook = other.get_by_label("Alert webhook URL").input_value()
    other.close()
    assert hook.startswith(f"{app_server}/hooks/alerts/{live_session.feature.pk}/")

    title = "Export job failed: <img src=x onerror=alert(1)> timeout after 30s"
    for page in (dana, sam):
        page.evaluate(WATCH_FOR_ALERT, title)
    sent_at = dana.evaluate("Date.now()")
    status, body = post_alert(
        hook,
        {
            "title": title,
            "level": "critical",
            "url": "https://errors.example.com/issues/42",
            "source": "Sentry",
            "tenant": "acme-qa",
        },
    )
    assert status == 202, body
    assert body["live_sessions"] == [str(live_session.pk)]

    for page in (dana, sam):
        alert = page.locator("#notes .event-alert").filter(has_text="Export job failed")
        expect(alert).to_be_visible()
        expect(alert.locator(".event-summary")).to_have_text(title)  # as text, not markup
        expect(alert.get_by_role("link", name=title)).to_have_attribute(
            "href", "https://errors.example.com/issues/42"
        )
        expect(alert).to_contain_text("Critical alert")
        expect(alert).not_to_have_class("other-tenant")
    delays = [page.evaluate("window.__alertSeenAt") - sent_at for page in (dana, sam)]
    print(f"alert from webhook to timeline: {delays} ms")
    # An alert is an item of the timeline, but no note.
    expect(sam.get_by_role("list", name="Notes").get_by_role("listitem")).to_have_count(1)
    expect(sam.locator("#notes .note")).to_have_count(0)

    # Sam watches the logs: the alerts stream is open beside the timeline for him.
    expect(sam.get_by_role("button", name="Alerts stream")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(dana.get_by_role("button", name="Alerts stream")).to_have_attribute(
        "aria-pressed", "false"
    )
    stream = sam.get_by_role("list", name="Alerts")
    expect(stream.get_by_role("listitem")).to_have_count(1)
    assert_no_serious_violations(axe, sam)

    # One click (with the goal chosen) turns it into an error note, for everyone.
    sam.get_by_label("Attach alerts to").select_option(label=GOAL)
    stream.get_by_role("button", name="Make error note").click()
    for page in (dana, sam):
        note = page.get_by_role("list", name="Notes").locator(".note")
        expect(note).to_have_count(1)
        expect(note).to_contain_text("Critical alert: " + title)
        expect(note).to_contain_text(f"for “{GOAL}”")
        expect(note.locator(".kind-badge")).to_have_text("Error")
    expect(stream).to_contain_text("Written up as error #1")
    stored = Note.objects.get(session=live_session)
    assert (stored.kind, stored.goal.text, stored.author.username) == ("error", GOAL, "sam")

    # Another tenant's alert is shown muted, until the facilitator hides them.
    status, _ = post_alert(hook, {"title": "Slow export for globex", "tenant": "globex"})
    assert status == 202
    elsewhere = sam.locator("#notes .event-alert").filter(has_text="Slow export for globex")
    expect(elsewhere).to_have_class("event event-alert level-error other-tenant")
    expect(elsewhere).to_contain_text("not our tenant")
    dana.get_by_role("button", name="Alerts stream").click()
    dana.get_by_label("Other tenants' alerts").select_option(label="Hidden")
    dana.get_by_role("button", name="Apply").click()
    expect(elsewhere).to_be_hidden()
    expect(sam.locator("#notes .event-alert").first).to_be_visible()
    assert EnsembleSession.objects.get(pk=live_session.pk).other_tenant_alerts == "hide"

    # A reload keeps all of it: the database is the truth.
    sam.reload()
    expect(sam.get_by_role("status")).to_have_text("Connected")
    expect(sam.locator("#notes .event-alert")).to_have_count(2)
    expect(elsewhere).to_be_hidden()
    assert Event.objects.filter(session=live_session, kind=Event.Kind.ALERT).count() == 2

    # And the review keeps it too.
    sam.goto(f"{app_server}/sessions/{live_session.pk}/review/")
    alerts = sam.locator("#alerts")
    expect(alerts).to_contain_text("Alerts during the session (2)")
    expect(alerts).to_contain_text(title)
    assert csp_violations == []


def test_alerts_while_no_session_is_live_wait_on_the_feature_page(
    app_server, page, session, facilitator
):
    login(page, app_server, "dana", PASSWORD)
    page.goto(f"{app_server}/features/{session.feature.pk}/")
    hook = page.get_by_label("Alert webhook URL").input_value()
    status, body = post_alert(
        hook,
        {
            "body": "%%%\nErrors on /exports above 5%\n%%%",
            "last_updated": "1700000000000",
            "event_type": "query_alert_monitor",
            "title": "[Triggered] Export error rate above 5%",
            "date": "1700000000000",
            "org": {"id": "1", "name": "Acme"},
            "id": "123",
        },
    )
    assert (status, body["live_sessions"]) == (202, [])
    page.reload()
    recent = page.get_by_role("list", name="Recent alerts")
    expect(recent.get_by_role("listitem")).to_have_count(1)
    expect(recent).to_contain_text("[Triggered] Export error rate above 5%")
    expect(recent).to_contain_text("Datadog")
    expect(recent).to_contain_text("no session was live")

    # Regenerating the address cuts off the old one.
    page.get_by_role("button", name="Regenerate the webhook URL").click()
    fresh = page.get_by_label("Alert webhook URL").input_value()
    assert fresh != hook
    assert post_alert(hook, {"title": "Too late"})[0] == 404
    assert post_alert(fresh, {"title": "On time"})[0] == 202


@pytest.fixture
def metric(session, facilitator) -> Metric:
    metric = Metric.objects.create(
        feature=session.feature,
        name="Bulk exports within 7 days",
        key="bulk-exports-7d",
        unit="%",
        baseline=40,
        target=70,
    )
    today = timezone.localdate()
    Measurement.objects.bulk_create(
        Measurement(metric=metric, date=today - datetime.timedelta(days=7 * (6 - i)), value=v)
        for i, v in enumerate([Decimal(v) for v in ("40", "41", "39.5", "43", "45", "47")])
    )
    EnsembleSession.objects.filter(pk=session.pk).update(status=EnsembleSession.Status.DECIDED)
    decision = Decision.objects.create(
        session=session, outcome="go", rationale="Ready", decided_by=facilitator
    )
    Decision.objects.filter(pk=decision.pk).update(
        decided_at=timezone.now() - datetime.timedelta(days=14)
    )
    return metric


def test_the_metric_chart_is_fed_by_hand_and_by_csv(app_server, page, metric, tmp_path, axe):
    login(page, app_server, "dana", PASSWORD)
    page.goto(f"{app_server}/features/{metric.feature_id}/")
    chart = page.get_by_role("img", name="Bulk exports within 7 days, 6 measurements")
    expect(chart).to_be_visible()
    article = page.locator(f"#metric-{metric.pk}")
    expect(article.locator(".metric-summary")).to_contain_text("Latest 47% on")
    expect(article.locator(".metric-summary")).to_contain_text("23% of the way from 40% to 70%")
    expect(article.get_by_role("list", name="Markers on the chart")).to_contain_text(
        "decision, Go: "
    )
    assert_no_serious_violations(axe, page)

    # By hand: 50% today, a third of the way.
    article.get_by_text("Latest values and adding more").click()
    article.get_by_label("Measured on").fill(timezone.localdate().isoformat())
    article.get_by_label("Value (%)").fill("50")
    article.get_by_role("button", name="Add measurement").click()
    expect(page.get_by_text("Measurements stored: 1 added.")).to_be_visible()
    summary = page.locator(f"#metric-{metric.pk} .metric-summary")
    expect(summary).to_contain_text("a third of the way (33%) from 40% to 70%")
    expect(
        page.get_by_role("img", name="Bulk exports within 7 days, 7 measurements")
    ).to_be_visible()

    # A bad file is refused whole, with its rows and reasons.
    bad = tmp_path / "bad.csv"
    bad.write_text("date,value\n2026-02-30,51\n2026-03-01,fifty\n2026-03-02,52\n")
    page.locator(f"#metric-{metric.pk}").get_by_text("Latest values and adding more").click()
    page.locator(f"#metric-{metric.pk}").get_by_label("CSV file (date,value)").set_input_files(bad)
    page.get_by_role("button", name="Upload CSV").click()
    expect(page.get_by_role("heading", name="Nothing was stored")).to_be_visible()
    rows = page.get_by_role("list", name="Rows that did not parse").get_by_role("listitem")
    expect(rows).to_have_text(
        [
            "Row 2: “2026-02-30” is not a date as YYYY-MM-DD",
            "Row 3: “fifty” is not a number",
        ]
    )
    assert metric.measurements.count() == 7

    # A good one is stored, and the chart moves.
    day = timezone.localdate() - datetime.timedelta(days=1)
    good = tmp_path / "good.csv"
    good.write_text(f"date,value\n{day.isoformat()},55.5\n")
    page.get_by_role("link", name="Back to the chart").click()
    page.locator(f"#metric-{metric.pk}").get_by_text("Latest values and adding more").click()
    page.locator(f"#metric-{metric.pk}").get_by_label("CSV file (date,value)").set_input_files(good)
    page.get_by_role("button", name="Upload CSV").click()
    expect(page.get_by_text("Measurements stored: 1 added.")).to_be_visible()
    assert metric.measurements.count() == 8
    assert Goal.objects.count() == 0  # nothing else was touched
