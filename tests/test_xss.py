"""Stored XSS: every field a user can write holds markup, and every page, every
live fragment the websocket broadcasts, and the exports show it as text.

Which fields those are is walked from the models, so a new text field cannot be
forgotten: it either gets markup in `stored_markup` or a reason in NOT_USER_TEXT.
"""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.db import models
from django.urls import reverse
from django.utils import timezone
from markdown_it import MarkdownIt

from sessions_app import alert_payloads, exports
from sessions_app.forms import DashboardLinkFormSet, FollowUpForm
from sessions_app.live_fragments import PANELS, event_payload, note_payload, panel_payload
from sessions_app.models import (
    ConfidenceVote,
    DashboardLink,
    Decision,
    EnsembleSession,
    Event,
    FollowUp,
    Goal,
    Metric,
    Note,
    RolloutStage,
    Webhook,
    WebhookDelivery,
)
from sessions_app.services import alerts, live, notes, rollout
from sessions_app.services.sessions import LINKS_PREFIX
from sessions_app.services.tokens import create_token
from sessions_app.services.webhooks import WebhookForm
from tests.factories import GoalFactory, ParticipantFactory

# Markup a browser would run or render, and Markdown a wiki would turn into a
# link or an image, in one value.
MARKUP = (
    "<script>alert(1)</script><img src=x onerror=alert(2)><xss-probe>"
    "\"'><b>bold</b> [click](javascript:alert(3)) ![pixel](https://evil.example/p.png)"
)


def marked(field: str, limit: int = 500) -> str:
    return (f"{field} " + MARKUP)[:limit]


# Text fields whose values no user writes freely.
NOT_USER_TEXT = {
    ("Invite", "token"): "generated",
    ("Webhook", "secret"): "generated",
    ("ApiToken", "digest"): "generated",
    ("ApiToken", "prefix"): "generated",
    ("Presence", "channel_name"): "generated",
    ("Note", "client_id"): "letters, digits, - and _ only (client_id_validator)",
    ("Feature", "flag_key"): "letters, digits, . : - only (flag_key_validator)",
    ("Feature", "alert_token"): "generated",
    ("RolloutChange", "action"): "one of the app's own verbs",
    ("WebhookDelivery", "event"): "one of the app's own event names",
    ("WebhookDelivery", "body"): "JSON sent to the receiver, never rendered in a page",
}


def user_text_fields() -> set[tuple[str, str]]:
    found = set()
    for model in apps.get_app_config("sessions_app").get_models():
        for field in model._meta.get_fields():
            if (
                isinstance(field, models.CharField | models.TextField)
                # A slug is validated to letters, digits, - and _.
                and not isinstance(field, models.SlugField)
                and not field.choices
                and (model.__name__, field.name) not in NOT_USER_TEXT
            ):
                found.add((model.__name__, field.name))
    return found


@pytest.fixture
def stored_markup(team, feature, session, facilitator, teammate):
    """Markup in every field a user can write, in a session that ran and was decided."""
    team.name = marked("team", 100)
    team.save()
    feature.name = marked("feature")[:120]
    feature.description = marked("description")
    feature.save()
    session.title = marked("title", 200)
    session.charter = marked("charter")
    session.internal_tenant = marked("tenant", 200)
    session.environment = marked("environment", 100)
    session.save()
    DashboardLink.objects.create(
        session=session,
        label=marked("label", 80),
        url='https://dash.example.com/?q="><script>alert(4)</script>',
    )
    goal = GoalFactory(session=session, author=teammate, text=marked("goal"))
    ParticipantFactory(session=session, user=teammate, role="driver")
    ParticipantFactory(session=session, user=facilitator, role="navigator")
    live.start_session(session=session, by=facilitator)
    session.refresh_from_db()
    # An alert from monitoring: its payload is written by whoever can reach the hook.
    alerts.receive(
        feature=feature,
        parsed=alert_payloads.parse(
            {
                "title": marked("alert"),
                "level": "error",
                "url": 'https://sentry.example/issues/1?x="><script>alert(6)</script>',
                "source": marked("source", 100),
                "tenant": marked("tenant", 200),
            }
        ),
    )
    note, _ = notes.post_note(
        session=session,
        author=teammate,
        data={"client_id": "xss-note-0001", "kind": "bug", "text": marked("note"), "goal": goal.pk},
    )
    edited, _ = notes.post_note(
        session=session,
        author=teammate,
        data={"client_id": "xss-note-0002", "kind": "idea", "text": "plain"},
    )
    notes.edit_note(note=edited, editor=teammate, data={"text": marked("edited")})
    live.set_goal_status(goal=goal, by=teammate, data={"status": "problem"})
    live.end_session(session=session, by=facilitator)
    session.refresh_from_db()
    ConfidenceVote.objects.create(session=session, voter=teammate, score=3, comment=marked("vote"))
    FollowUp.objects.create(
        session=session,
        text=marked("follow-up"),
        owner=teammate,
        tracker_url='https://tracker.example/INV-1?x="><script>alert(5)</script>',
    )
    Decision.objects.create(
        session=session,
        outcome="go",
        rationale=marked("rationale"),
        revision_reason=marked("revision"),
        decided_by=facilitator,
    )
    stage = RolloutStage.objects.create(feature=feature, position=1, name="Internal tenant")
    rollout.rename_stage(stage=stage, by=facilitator, data={"name": marked("old stage", 120)})
    # The change log keeps the old name ("was …") as well as the new one.
    rollout.rename_stage(stage=stage, by=facilitator, data={"name": marked("stage", 120)})
    rollout.approve(stage=stage, by=facilitator)
    rollout.pause(stage=stage, by=facilitator, reason=marked("pause-reason"))
    Metric.objects.create(
        feature=feature,
        name=marked("metric", 120),
        definition=marked("definition"),
        unit="<u>%",
        baseline=40,
        target=70,
    )
    create_token(user=facilitator, name=marked("token", 80))
    webhook = Webhook.objects.create(
        team=team, url='https://hooks.example.com/?"><script>x</script>'
    )
    WebhookDelivery.objects.create(
        webhook=webhook,
        event="decision.recorded",
        body="{}",
        next_attempt_at=timezone.now(),
        last_error=marked("receiver error"),
    )
    return session


class Findings(HTMLParser):
    """What in a page would run or render as markup."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in {"xss-probe", "b"} or (tag == "img" and attributes.get("src") == "x"):
            self.problems.append(f"<{tag}> from user text")
        if tag == "script" and "nonce" not in attributes and "src" not in attributes:
            self.problems.append(f"inline <script> without a nonce: {attrs}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}={value!r} on <{tag}>")
            if name in {"href", "src", "action", "formaction"} and (
                value or ""
            ).strip().lower().startswith(("javascript:", "data:text", "vbscript:")):
                self.problems.append(f"{name}={value!r} on <{tag}>")

    def handle_data(self, data):
        self.text.append(data)


def findings(html: str) -> Findings:
    parser = Findings()
    parser.feed(html)
    parser.close()
    return parser


def page_urls(session, feature, goal) -> list[str]:
    sid = {"session_id": session.pk}
    return [
        reverse("dashboard"),
        reverse("team"),
        reverse("account"),
        reverse("feature_detail", kwargs={"feature_id": feature.pk}),
        reverse("feature_edit", kwargs={"feature_id": feature.pk}),
        reverse("session_plan", kwargs=sid),
        reverse("session_edit", kwargs=sid),
        reverse("goal_edit", kwargs={**sid, "goal_id": goal.pk}),
        reverse("live_room", kwargs=sid),
        reverse("review", kwargs=sid),
    ]


def test_the_fixture_puts_markup_in_every_field_a_user_can_write(stored_markup):
    missing = []
    for model_name, field in sorted(user_text_fields()):
        model = apps.get_model("sessions_app", model_name)
        if not model.objects.filter(**{f"{field}__contains": "<"}).exists():
            missing.append(f"{model_name}.{field}")
    assert not missing, (
        f"No markup stored in {missing}: put some in the stored_markup fixture of "
        f"tests/test_xss.py (and check where it shows), or say in NOT_USER_TEXT why no "
        f"user writes it."
    )


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_every_page_shows_user_markup_as_text(stored_markup, facilitator_client, htmx):
    session = stored_markup
    goal = Goal.objects.get(session=session)
    headers = {"HX-Request": "true"} if htmx else {}
    for url in page_urls(session, session.feature, goal):
        response = facilitator_client.get(url, headers=headers)
        assert response.status_code == 200, url
        found = findings(response.content.decode())
        assert found.problems == [], url
        # Not merely removed: shown, as written.
        if not htmx:
            assert "<script>alert(1)</script>" in "".join(found.text), url


def test_what_the_websocket_broadcasts_shows_user_markup_as_text(stored_markup):
    session = EnsembleSession.objects.select_related("feature").get(pk=stored_markup.pk)
    fragments = [note_payload(note) for note in Note.objects.filter(session=session)]
    fragments += [event_payload(event) for event in Event.objects.filter(session=session)]
    fragments += [panel_payload(session, panel) for panel in PANELS]
    assert len(fragments) >= 2 + 1 + len(PANELS)
    shown = ""
    for fragment in fragments:
        found = findings(fragment["html"])
        assert found.problems == [], fragment
        shown += "".join(found.text)
    for field in ("note", "edited", "goal", "alert"):
        assert f"{field} <script>alert(1)</script>" in shown


def markdown_to_html(text: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)


def test_the_markdown_export_renders_user_text_as_text_in_a_wiki(stored_markup):
    md = "".join(exports.markdown_chunks(stored_markup))
    html = markdown_to_html(md)

    found = findings(html)
    assert found.problems == []
    # No link and no image at all: the tracker link is shown as plain text.
    assert html.count("<a ") == 0 and "<img" not in html
    shown = "".join(found.text)
    for field in ("title", "rationale", "goal", "note", "follow-up"):
        assert f"{field} {MARKUP}".split("'")[0] in shown, field
    assert "<em>" not in html and "<strong>bold" not in html


def test_the_markdown_export_keeps_the_tracker_link_inside_its_parentheses(stored_markup):
    md = "".join(exports.markdown_chunks(stored_markup))
    line = next(line for line in md.splitlines() if line.startswith("- [ ] follow-up"))
    assert line.endswith(
        "(https://tracker.example/INV-1?x=%22%3E%3Cscript%3Ealert%285%29%3C/script%3E)"
    )


@pytest.mark.parametrize(
    "formula", ['=HYPERLINK("https://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_the_csv_export_defuses_cells_a_spreadsheet_would_run(
    formula, session, facilitator, teammate
):
    goal = GoalFactory(session=session, author=teammate, text=formula)
    session.status = EnsembleSession.Status.LIVE
    session.started_at = timezone.now()
    session.save()
    notes.post_note(
        session=session,
        author=teammate,
        data={"client_id": "csv-formula-1", "kind": "bug", "text": formula, "goal": goal.pk},
    )

    rows = list(csv.reader(io.StringIO("".join(exports.csv_chunks(session)), newline="")))

    # A note's text is stored stripped; the goal's as written.
    stored = Note.objects.get().text
    assert stored.startswith(("=", "+", "-", "@"))
    assert rows[1][5:] == ["'" + formula, "'" + stored]


def test_the_csv_export_leaves_ordinary_text_alone(session, teammate):
    session.status = EnsembleSession.Status.LIVE
    session.started_at = timezone.now()
    session.save()
    text = "Totals = 1,000 - see @sam's note"
    notes.post_note(
        session=session,
        author=teammate,
        data={"client_id": "csv-plain-01", "kind": "bug", "text": text},
    )
    rows = list(csv.reader(io.StringIO("".join(exports.csv_chunks(session)), newline="")))
    assert rows[1][6] == text


# --- Links accept only http(s) -------------------------------------------------------------

NOT_HTTP = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "ftp://files.example.com/report",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("url", NOT_HTTP)
def test_a_dashboard_link_must_be_http_or_https(url, session):
    links = DashboardLinkFormSet(
        {
            f"{LINKS_PREFIX}-TOTAL_FORMS": "1",
            f"{LINKS_PREFIX}-INITIAL_FORMS": "0",
            f"{LINKS_PREFIX}-0-label": "Logs",
            f"{LINKS_PREFIX}-0-url": url,
        },
        instance=session,
        prefix=LINKS_PREFIX,
    )
    assert not links.is_valid()
    assert "url" in links.forms[0].errors


@pytest.mark.parametrize("url", NOT_HTTP)
def test_a_dashboard_link_that_is_not_http_is_refused_by_the_plan_form_and_not_stored(
    url, session, facilitator_client
):
    data = {
        "feature": session.feature.pk,
        "title": session.title,
        "internal_tenant": "internal",
        "environment": "production",
        "timebox_minutes": "60",
        "facilitator": session.facilitator_id,
        f"{LINKS_PREFIX}-TOTAL_FORMS": "1",
        f"{LINKS_PREFIX}-INITIAL_FORMS": "0",
        f"{LINKS_PREFIX}-0-label": "Logs",
        f"{LINKS_PREFIX}-0-url": url,
    }
    response = facilitator_client.post(reverse("session_edit", args=[session.pk]), data)
    assert response.status_code == 400
    assert not DashboardLink.objects.exists()


@pytest.mark.parametrize("url", NOT_HTTP)
def test_tracker_and_webhook_links_must_be_http_or_https(url, session):
    follow_up = FollowUpForm({"text": "Fix", "tracker_url": url}, session=session)
    assert "tracker_url" in follow_up.errors
    assert "url" in WebhookForm({"url": url}).errors


def test_http_and_https_dashboard_links_are_kept(session):
    for url in ("https://app.datadoghq.com/dash/1", "http://grafana.internal:3000/d/x"):
        links = DashboardLinkFormSet(
            {
                f"{LINKS_PREFIX}-TOTAL_FORMS": "1",
                f"{LINKS_PREFIX}-INITIAL_FORMS": "0",
                f"{LINKS_PREFIX}-0-label": "Dash",
                f"{LINKS_PREFIX}-0-url": url,
            },
            instance=session,
            prefix=LINKS_PREFIX,
        )
        assert links.is_valid(), links.errors
