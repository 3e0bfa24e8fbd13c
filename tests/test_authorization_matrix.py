"""The authorization matrix: every URL pattern of the project and every websocket
route, walked from the URLconf and the channels routing, for each kind of visitor,
with the status each one gets for GET and for POST.

A URL or websocket route without a row in the matrix fails the suite, with a
message saying where to add it: a new view cannot be forgotten.

The cast, in one team (Acme):
  anonymous    not signed in
  outsider     owner of another team (Globex)
  member       a member of Acme who takes part in the session (not its facilitator)
  facilitator  a member of Acme (not an owner) who facilitates the session
  owner        an owner of Acme who neither facilitates nor takes part

Every POST sends valid data for its view, with the session in the state the view
acts on, so a refusal comes from who is asking and from nothing else. A refusal
(401, 403, 404, 405 or a redirect to log in) changes nothing; a GET changes
nothing for anyone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from sessions_app.consumers import FORBIDDEN, UNAUTHENTICATED
from sessions_app.models import (
    Alert,
    ApiToken,
    ConfidenceVote,
    Decision,
    EnsembleSession,
    Event,
    Feature,
    FollowUp,
    Goal,
    GoalVote,
    Invite,
    Measurement,
    Membership,
    Metric,
    Note,
    Participant,
    RolloutStage,
    Team,
    Webhook,
)
from sessions_app.routing import websocket_urlpatterns
from sessions_app.services.sessions import LINKS_PREFIX
from sessions_app.services.tokens import create_token
from tests.factories import (
    FeatureFactory,
    GoalFactory,
    InviteFactory,
    MembershipFactory,
    ParticipantFactory,
    SessionFactory,
    TeamFactory,
    UserFactory,
)
from tests.live_room import TIMEOUT, session_cookie, still_open

User = get_user_model()
ROLES = ("anonymous", "outsider", "member", "facilitator", "owner")
HERE = "tests/test_authorization_matrix.py"

# --- The matrix ----------------------------------------------------------------------
#
# One row per URL name: (GET, POST), each five answers in the order of ROLES:
#     anonymous  outsider  member  facilitator  owner
# An answer is a status code, or "login" for a redirect to the login page. A 302
# that is not "login" is the view's own redirect after doing its work.
EXPECTED: dict[str, tuple[str, str]] = {
    # Signing in and out (django.contrib.auth): open to everyone.
    "login": ("200 200 200 200 200", "200 200 200 200 200"),
    "logout": ("405 405 405 405 405", "login login login login login"),
    "password_change": ("login 200 200 200 200", "login 200 200 200 200"),
    "password_change_done": ("login 200 200 200 200", "login 405 405 405 405"),
    "password_reset": ("200 200 200 200 200", "200 200 200 200 200"),
    "password_reset_done": ("200 200 200 200 200", "405 405 405 405 405"),
    "password_reset_confirm": ("200 200 200 200 200", "200 200 200 200 200"),
    "password_reset_complete": ("200 200 200 200 200", "405 405 405 405 405"),
    # Accounts and teams. The outsider acts on their own team where a view has no id.
    "dashboard": ("login 200 200 200 200", "login 200 200 200 200"),
    "signup": ("200 302 302 302 302", "302 302 302 302 302"),
    "account": ("login 200 200 200 200", "login 200 200 200 200"),
    "token_revoke": ("login 405 405 405 405", "login 404 302 404 404"),  # the member's token
    "team_create": ("login 200 200 200 200", "login 302 302 302 302"),
    "team_switch": ("login 405 405 405 405", "login 404 302 302 302"),
    "team": ("login 200 200 200 200", "login 200 200 200 200"),
    "invite_create": ("login 405 405 405 405", "login 302 403 403 302"),
    "invite_revoke": ("login 405 405 405 405", "login 404 403 403 302"),
    # An invite link is a capability: whoever holds it may join.
    "invite_accept": ("200 200 200 200 200", "login 302 302 302 302"),
    "webhook_add": ("login 405 405 405 405", "login 302 403 403 302"),
    "webhook_remove": ("login 405 405 405 405", "login 404 403 403 302"),
    # The read API authenticates by token (each role sends its own), never by cookie.
    "api_feature_rollout": ("401 404 200 200 200", "405 405 405 405 405"),
    # Features and their rollout plans: any member; overriding a gate is the owner's.
    "feature_create": ("login 200 200 200 200", "login 302 302 302 302"),
    "feature_detail": ("login 404 200 200 200", "login 404 200 200 200"),
    "feature_edit": ("login 404 200 200 200", "login 404 302 302 302"),
    "rollout_add": ("login 405 405 405 405", "login 404 302 302 302"),
    "rollout_stage": ("login 405 405 405 405", "login 404 302 302 302"),
    # Planning: anyone in the team adds goals and votes; the facilitator (or an
    # owner standing in) runs the plan.
    "session_create": ("login 200 200 200 200", "login 400 302 302 302"),
    "session_plan": ("login 404 200 200 200", "login 404 200 200 200"),
    "session_edit": ("login 404 403 200 200", "login 404 403 302 302"),
    "goal_add": ("login 405 405 405 405", "login 404 302 302 302"),
    "goals_merge": ("login 405 405 405 405", "login 404 403 302 302"),
    # Someone else's goal: only its author or the facilitator changes it.
    "goal_edit": ("login 404 403 200 200", "login 404 403 302 302"),
    "goal_delete": ("login 405 405 405 405", "login 404 403 302 302"),
    "goal_vote": ("login 405 405 405 405", "login 404 302 302 302"),
    "goal_must_cover": ("login 405 405 405 405", "login 404 403 302 302"),
    "participant_add": ("login 405 405 405 405", "login 404 403 302 302"),
    "participant_role": ("login 405 405 405 405", "login 404 403 302 302"),
    "participant_remove": ("login 405 405 405 405", "login 404 403 302 302"),
    "participant_move": ("login 405 405 405 405", "login 404 403 302 302"),
    "rotation": ("login 405 405 405 405", "login 404 403 302 302"),
    # The live room: anyone in the team writes notes and ticks goals off.
    "live_room": ("login 404 200 200 200", "login 404 200 200 200"),
    "note_add": ("login 405 405 405 405", "login 404 302 302 302"),
    "live_start": ("login 405 405 405 405", "login 404 403 302 302"),
    "live_end": ("login 405 405 405 405", "login 404 403 302 302"),
    "live_rotate": ("login 405 405 405 405", "login 404 403 302 302"),
    "live_pause": ("login 405 405 405 405", "login 404 403 302 302"),
    "live_resume": ("login 405 405 405 405", "login 404 403 302 302"),
    "live_goal_status": ("login 405 405 405 405", "login 404 302 302 302"),
    "live_role": ("login 405 405 405 405", "login 404 403 302 302"),
    # After the session: participants and the facilitator vote (an owner who took
    # no part does not); the facilitator or an owner decides.
    "review": ("login 404 200 200 200", "login 404 200 200 200"),
    "review_vote": ("login 405 405 405 405", "login 404 302 302 403"),
    "review_reveal": ("login 405 405 405 405", "login 404 403 302 302"),
    "review_decide": ("login 405 405 405 405", "login 404 403 302 302"),
    "follow_up_add": ("login 405 405 405 405", "login 404 403 302 302"),
    "follow_up_done": ("login 405 405 405 405", "login 404 302 302 302"),
    "export_json": ("login 404 200 200 200", "login 404 200 200 200"),
    "export_md": ("login 404 200 200 200", "login 404 200 200 200"),
    "export_csv": ("login 404 200 200 200", "login 404 200 200 200"),
    # Alerts: the webhook's secret URL is a capability (this POST is not JSON, so
    # everyone who holds the URL gets the same 400); in the live room anyone in
    # the team writes an alert up, the facilitator (or an owner) mutes or hides
    # other tenants' alerts, and only an owner regenerates the webhook's URL.
    "alert_webhook": ("405 405 405 405 405", "400 400 400 400 400"),
    "alert_token_regenerate": ("login 405 405 405 405", "login 404 403 403 302"),
    "live_alert_note": ("login 405 405 405 405", "login 404 302 302 302"),
    "live_alert_tenants": ("login 405 405 405 405", "login 404 403 302 302"),
    # Earlier notes of the live room need ?before=<seq>: without it, a clear 400.
    "live_earlier": ("login 404 400 400 400", "login 405 405 405 405"),
    # Metrics: any member defines them and feeds them; only an owner deletes one.
    "metric_add": ("login 404 200 200 200", "login 404 302 302 302"),
    "metric_edit": ("login 404 200 200 200", "login 404 302 302 302"),
    "metric_delete": ("login 405 405 405 405", "login 404 403 403 302"),
    "measurement_add": ("login 405 405 405 405", "login 404 302 302 302"),
    "measurements_upload": ("login 405 405 405 405", "login 404 302 302 302"),
    "measurements_csv": ("login 404 200 200 200", "login 405 405 405 405"),
    # The cast's tokens only read: writing measurements takes a token made to write.
    "api_metric_measurements": ("405 405 405 405 405", "401 404 403 403 403"),
}

# The Django admin is for staff only: nobody in the cast is staff, so every admin
# URL sends each of them to the admin's own login page, but that page itself,
# and logging out of the admin, which sends a non-staff user to its index.
ADMIN_OPEN = {"admin:login": ("200", "200"), "admin:logout": ("302", "302")}

# Which state of the session each view acts on (planning when not listed).
SESSION_STATE = {
    **dict.fromkeys(
        [
            "note_add",
            "live_end",
            "live_rotate",
            "live_pause",
            "live_resume",
            "live_goal_status",
            "live_role",
            "live_alert_note",
            "live_alert_tenants",
        ],
        EnsembleSession.Status.LIVE,
    ),
    **dict.fromkeys(
        ["review_vote", "review_reveal", "review_decide", "follow_up_add", "follow_up_done"],
        EnsembleSession.Status.REVIEW,
    ),
}

# The websocket routes: for each, the close code a role gets, or "open".
WEBSOCKET_EXPECTED: dict[str, dict[str, int | str]] = {
    "ws/sessions/<uuid:session_id>/": {
        "anonymous": UNAUTHENTICATED,
        "outsider": FORBIDDEN,
        "member": "open",
        "facilitator": "open",
        "owner": "open",
    },
}

# --- The cast and the rows the URLs point at ------------------------------------------


@dataclass
class Cast:
    users: dict[str, Any]  # role -> user (None for anonymous)
    session: EnsembleSession
    erin: Any  # another member, who wrote the goal and takes part
    rows: dict[str, Any]  # URL parameter -> value
    tokens: dict[str, str]  # role -> raw API token


def make_cast() -> Cast:
    acme = TeamFactory(name="Acme")
    owner = UserFactory(username="dana")
    MembershipFactory(team=acme, user=owner, role=Membership.Role.OWNER)
    facilitator = UserFactory(username="fay")
    MembershipFactory(team=acme, user=facilitator)
    member = UserFactory(username="sam")
    MembershipFactory(team=acme, user=member)
    erin = UserFactory(username="erin")
    MembershipFactory(team=acme, user=erin)
    outsider = UserFactory(username="olga")
    MembershipFactory(team=TeamFactory(name="Globex"), user=outsider, role=Membership.Role.OWNER)

    feature = FeatureFactory(team=acme, name="Bulk invoice export", flag_key="bulk-invoice-export")
    session = SessionFactory(
        feature=feature,
        title="Bulk export walkthrough",
        facilitator=facilitator,
        rotation_minutes=10,
    )
    goal = GoalFactory(session=session, author=erin, text="Export 500 invoices")
    GoalFactory(session=session, author=erin, text="Export five hundred invoices")
    participant = ParticipantFactory(session=session, user=member, role="observer")
    ParticipantFactory(session=session, user=erin, role="observer", rotation_position=1)
    invite = InviteFactory(team=acme, created_by=owner)
    follow_up = FollowUp.objects.create(session=session, text="Fix rounding", owner=erin)
    stage = RolloutStage.objects.create(feature=feature, position=1, name="Internal tenant")
    member_token, _ = create_token(user=member, name="Pipeline")
    webhook = Webhook.objects.create(team=acme, url="https://hooks.example.com/")
    metric = Metric.objects.create(
        feature=feature, name="Exports in 7 days", key="exports-7d", baseline=40, target=70
    )
    alert = Alert.objects.create(feature=feature, shape="generic", title="Export failed")
    alert_event = Event.objects.create(
        session=session, revision=1, kind=Event.Kind.ALERT, summary=alert.title, alert=alert
    )
    EnsembleSession.objects.filter(pk=session.pk).update(revision=1)
    session.refresh_from_db()
    users = {
        "anonymous": None,
        "outsider": outsider,
        "member": member,
        "facilitator": facilitator,
        "owner": owner,
    }
    tokens = {role: create_token(user=user, name="CI")[1] for role, user in users.items() if user}
    rows = {
        "session_id": session.pk,
        "feature_id": feature.pk,
        "team_id": acme.pk,
        "goal_id": goal.pk,
        "participant_id": participant.pk,
        "invite_id": invite.pk,
        "token": invite.token,
        "follow_up_id": follow_up.pk,
        "stage_id": stage.pk,
        "action": "approve",
        "token_id": member_token.pk,
        "flag_key": feature.flag_key,
        "webhook_id": webhook.pk,
        "metric_id": metric.pk,
        "metric_key": metric.key,
        "event_id": alert_event.pk,
        "alert_token": feature.alert_token,
    }
    return Cast(users=users, session=session, erin=erin, rows=rows, tokens=tokens)


# URL parameters that mean something else in one URL than in the others: a value,
# or a function of make_cast()'s rows (e.g. {"token": lambda rows: rows["…"]}).
KWARGS_FOR = {
    "password_reset_confirm": {"uidb64": "MQ", "token": "not-a-valid-token"},
    "alert_webhook": {"token": lambda rows: rows["alert_token"]},
}


def post_data(name: str, cast: Cast) -> dict[str, Any]:
    """Valid data for each view, so that only who is asking decides the answer."""
    rows, session = cast.rows, cast.session
    other_goal = Goal.objects.exclude(pk=rows["goal_id"]).filter(session=session).get()
    return {
        "signup": {
            "username": "newcomer",
            "password1": "a-long-enough-passphrase-42",
            "password2": "a-long-enough-passphrase-42",
        },
        "account": {"name": "CI"},
        "team_create": {"name": "Initech"},
        "webhook_add": {"url": "https://hooks.example.com/new"},
        "feature_create": {"name": "Dark mode", "flag_key": "dark-mode", "description": ""},
        "feature_edit": {
            "name": "Bulk invoice export v2",
            "flag_key": rows["flag_key"],
            "description": "Now with totals",
        },
        "rollout_add": {"name": "Pilot customers"},
        "session_create": {
            "feature": rows["feature_id"],
            "title": "Second walkthrough",
            "internal_tenant": "acme-internal",
            "environment": "production",
            "timebox_minutes": "60",
            "facilitator": session.facilitator_id,
            f"{LINKS_PREFIX}-TOTAL_FORMS": "0",
            f"{LINKS_PREFIX}-INITIAL_FORMS": "0",
        },
        "session_edit": {
            "feature": rows["feature_id"],
            "title": "Renamed walkthrough",
            "internal_tenant": "acme-internal",
            "environment": "production",
            "timebox_minutes": "45",
            "facilitator": session.facilitator_id,
            f"{LINKS_PREFIX}-TOTAL_FORMS": "0",
            f"{LINKS_PREFIX}-INITIAL_FORMS": "0",
        },
        "goal_add": {"text": "Export in Excel", "perspective": "support"},
        "goals_merge": {"duplicate": other_goal.pk, "keep": rows["goal_id"]},
        "goal_edit": {"text": "Export 600 invoices", "perspective": "engineering"},
        "goal_must_cover": {"must_cover": "1"},
        "participant_add": {"user": cast.users["owner"].pk, "role": "note_taker"},
        "participant_role": {"role": "note_taker"},
        "participant_move": {"direction": "down"},
        "rotation": {"rotation_minutes": "15"},
        "note_add": {"kind": "bug", "text": "Totals off", "client_id": "matrix-note-0001"},
        "live_goal_status": {"status": "covered"},
        "live_role": {"role": "note_taker"},
        "review_vote": {"score": "4", "comment": ""},
        "review_decide": {"outcome": "go", "rationale": "Every must-cover goal held."},
        "follow_up_add": {"text": "Document the limit", "owner": cast.erin.pk},
        "follow_up_done": {"done": "1"},
        "live_alert_tenants": {"other_tenants": "hide"},
        "metric_add": {"name": "Export share", "baseline": "40", "target": "70"},
        "metric_edit": {"name": "Exports within a week", "baseline": "40", "target": "75"},
        "measurement_add": {"date": "2026-11-01", "value": "50"},
        "measurements_upload": {
            "file": SimpleUploadedFile("m.csv", b"date,value\n2026-11-01,50\n", "text/csv")
        },
        "password_change": {},
        "password_reset": {"email": ""},
    }.get(name, {})


def prepare(name: str, session: EnsembleSession) -> None:
    """Put the session in the state the view acts on."""
    state = SESSION_STATE.get(name)
    if state is None:
        return
    now = timezone.now()
    session.status = state
    session.started_at = now - timedelta(minutes=30)
    if state == EnsembleSession.Status.LIVE:
        if name == "live_resume":
            session.rotation_paused_seconds = 120
        else:
            session.rotation_due_at = now + timedelta(minutes=5)
    else:
        session.ended_at = now
    session.save()


def snapshot() -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        list(Team.objects.order_by("pk").values_list("pk", "name")),
        list(Membership.objects.order_by("pk").values_list("pk", "team_id", "user_id", "role")),
        list(User.objects.order_by("pk").values_list("pk", "username", "password")),
        list(Feature.objects.order_by("pk").values_list("pk", "name", "flag_key", "description")),
        list(
            EnsembleSession.objects.order_by("pk").values_list(
                "pk",
                "title",
                "status",
                "revision",
                "rotation_minutes",
                "rotation_due_at",
                "rotation_paused_seconds",
                "votes_revealed",
            )
        ),
        list(Goal.objects.order_by("pk").values_list("pk", "text", "must_cover", "status")),
        GoalVote.objects.count(),
        list(Participant.objects.order_by("pk").values_list("pk", "role", "rotation_position")),
        list(Invite.objects.order_by("pk").values_list("pk", "revoked_at")),
        list(Note.objects.order_by("pk").values_list("pk", "text")),
        Event.objects.count(),
        list(FollowUp.objects.order_by("pk").values_list("pk", "text", "done")),
        ConfidenceVote.objects.count(),
        Decision.objects.count(),
        list(RolloutStage.objects.order_by("pk").values_list("pk", "name", "status", "position")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        list(Webhook.objects.order_by("pk").values_list("pk", "url")),
        list(Metric.objects.order_by("pk").values_list("pk", "name", "baseline", "target")),
        list(Measurement.objects.order_by("pk").values_list("pk", "date", "value")),
        Alert.objects.count(),
        list(Feature.objects.order_by("pk").values_list("pk", "alert_token")),
        list(EnsembleSession.objects.order_by("pk").values_list("pk", "other_tenant_alerts")),
    )


# --- Walking the URLconf ---------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str  # namespaced, e.g. "admin:index"
    route: str  # the pattern, as written
    pattern: URLPattern


def walk(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part)
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        else:
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield Route(name=name or "", route=prefix + str(entry.pattern), pattern=entry)


ROUTES = list(walk())
ADMIN_ROUTES = [r for r in ROUTES if r.route.startswith("admin/")]
APP_ROUTES = [r for r in ROUTES if not r.route.startswith("admin/")]


def parameters(pattern: URLPattern) -> list[str]:
    return list(pattern.pattern.regex.groupindex)


def url_for(route: Route, rows: dict[str, Any]) -> str:
    wanted = parameters(route.pattern)
    special = KWARGS_FOR.get(route.name, {})
    values = {**rows, **{k: v(rows) if callable(v) else v for k, v in special.items()}}
    missing = [key for key in wanted if key not in values]
    if missing:
        pytest.fail(
            f"URL {route.name!r} ({route.route}) takes {missing}, which the matrix has no "
            f"value for: add one to make_cast()'s rows (or KWARGS_FOR) in {HERE}."
        )
    return reverse(route.name, kwargs={key: values[key] for key in wanted})


def expected(name: str, method: str, role: str) -> str:
    if name not in EXPECTED:
        pytest.fail(
            f"URL {name!r} has no row in the authorization matrix: add what each of "
            f"{', '.join(ROLES)} gets for GET and POST to EXPECTED in {HERE}."
        )
    answers = EXPECTED[name][0 if method == "get" else 1].split()
    assert len(answers) == len(ROLES), f"EXPECTED[{name!r}] needs one answer per role"
    return answers[ROLES.index(role)]


def answer_of(response, login_url: str) -> str:
    if response.status_code == 302 and response["Location"].startswith(login_url):
        return "login"
    return str(response.status_code)


REFUSED = {"login", "401", "403", "404", "405"}


def client_for(cast: Cast, role: str) -> Client:
    client = Client()
    if cast.users[role] is not None:
        client.force_login(cast.users[role])
    return client


# --- The tests ---------------------------------------------------------------------------


def test_every_url_and_websocket_route_has_a_row_in_the_matrix():
    unnamed = [r.route for r in APP_ROUTES if not r.name]
    assert not unnamed, f"Name these URL patterns so the matrix can hold them: {unnamed}"
    names = {r.name for r in APP_ROUTES}
    missing = sorted(names - set(EXPECTED))
    stale = sorted(set(EXPECTED) - names)
    assert not missing, (
        f"URLs with no row in the authorization matrix: {missing}. Add what each of "
        f"{', '.join(ROLES)} gets for GET and POST to EXPECTED in {HERE}."
    )
    assert not stale, f"Rows in EXPECTED for URLs that no longer exist: {stale}"
    routes = {str(p.pattern) for p in websocket_urlpatterns}
    assert routes == set(WEBSOCKET_EXPECTED), (
        f"Websocket routes with no row: {sorted(routes - set(WEBSOCKET_EXPECTED))}; rows for "
        f"routes that no longer exist: {sorted(set(WEBSOCKET_EXPECTED) - routes)}. "
        f"Update WEBSOCKET_EXPECTED in {HERE}."
    )


def ask(route: Route, role: str, cast: Cast) -> list[str]:
    """What `role` gets for GET and POST, as mismatches with the matrix."""
    wrong = []
    url = url_for(route, cast.rows)
    login_url = reverse("login")
    client = client_for(cast, role)
    headers = {}
    if route.name.startswith("api_") and role != "anonymous":
        headers["Authorization"] = f"Bearer {cast.tokens[role]}"

    before = snapshot()
    response = client.get(url, headers=headers)
    answer, want = answer_of(response, login_url), expected(route.name, "get", role)
    if answer != want:
        wrong.append(f"GET as {role}: {answer} (expected {want}) {response.get('Location', '')}")
    if snapshot() != before:
        wrong.append(f"GET as {role} changed something")

    response = client.post(url, post_data(route.name, cast), headers=headers)
    answer, want = answer_of(response, login_url), expected(route.name, "post", role)
    if answer != want:
        wrong.append(f"POST as {role}: {answer} (expected {want}) {response.get('Location', '')}")
    if answer in REFUSED and snapshot() != before:
        wrong.append(f"POST as {role} was refused ({answer}) but changed something")
    return wrong


@pytest.mark.parametrize("route", APP_ROUTES, ids=lambda r: r.name or r.route)
def test_each_role_gets_the_expected_answer_and_a_refusal_changes_nothing(route, db):
    cast = make_cast()
    prepare(route.name, cast.session)
    wrong = []
    for role in ROLES:
        # Each role starts from the same rows: what one role's POST did is undone.
        savepoint = transaction.savepoint_create()
        try:
            wrong += ask(route, role, cast)
        finally:
            transaction.savepoint_rollback(savepoint)
    assert not wrong, f"{route.name} ({url_for(route, cast.rows)}):\n" + "\n".join(wrong)


def test_the_matrix_posts_change_what_they_are_for(db):
    """A guard on the matrix itself: the facilitator's valid POST to a few views
    really writes, so a "302" in the matrix means the work was done."""
    cast = make_cast()
    client = client_for(cast, "facilitator")
    by_name = {r.name: r for r in APP_ROUTES}
    for name, changed in [
        ("session_edit", lambda: EnsembleSession.objects.get().title == "Renamed walkthrough"),
        ("goal_must_cover", lambda: Goal.objects.get(pk=cast.rows["goal_id"]).must_cover),
        ("rotation", lambda: EnsembleSession.objects.get().rotation_minutes == 15),
        ("participant_role", lambda: Participant.objects.filter(role="note_taker").exists()),
    ]:
        response = client.post(url_for(by_name[name], cast.rows), post_data(name, cast))
        assert response.status_code == 302, name
        assert changed(), f"{name} answered 302 but changed nothing"


def admin_url(route: Route, cast: Cast) -> str:
    if not route.name:
        # The admin's unnamed patterns: a redirect to an object's change page, and
        # the catch-all for unknown admin paths.
        if "(?P<url>" in route.route:
            return "/admin/no-such-page/"
        return "/" + route.route.replace("<path:object_id>", str(cast.rows["feature_id"]))
    values = {
        "object_id": str(cast.rows["feature_id"]),
        "content_type_id": "1",
        "id": str(cast.users["member"].pk),
        "app_label": "sessions_app",
    }
    return reverse(route.name, kwargs={key: values[key] for key in parameters(route.pattern)})


@pytest.mark.parametrize("role", ROLES)
def test_the_admin_is_closed_to_everyone_who_is_not_staff(role, db):
    assert ADMIN_ROUTES and admin.site.is_registered(Feature)
    cast = make_cast()
    client = client_for(cast, role)
    admin_login = reverse("admin:login")
    before = snapshot()
    for route in ADMIN_ROUTES:
        url = admin_url(route, cast)
        for index, method in enumerate(("get", "post")):
            response = getattr(client, method)(url)
            if route.name in ADMIN_OPEN:
                assert str(response.status_code) == ADMIN_OPEN[route.name][index], (method, url)
                continue
            assert response.status_code == 302, (method, url, role, response.status_code)
            assert response["Location"].startswith(admin_login), (method, url, role)
    assert snapshot() == before


# --- The websocket routes ------------------------------------------------------------------


def websocket_path(route: str, rows: dict[str, Any]) -> str:
    pattern = next(p for p in websocket_urlpatterns if str(p.pattern) == route)
    path = route
    for key in parameters(pattern):
        if key not in rows:
            pytest.fail(f"Websocket route {route} takes {key!r}: add it to make_cast()'s rows")
        path = path.replace(f"<uuid:{key}>", str(rows[key])).replace(f"<{key}>", str(rows[key]))
    return "/" + path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", [str(p.pattern) for p in websocket_urlpatterns])
async def test_each_role_gets_the_expected_answer_on_each_websocket_route(route, role):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    if route not in WEBSOCKET_EXPECTED:
        pytest.fail(f"Websocket route {route} has no row: add it to WEBSOCKET_EXPECTED in {HERE}")
    cast = await database_sync_to_async(make_cast)()
    await database_sync_to_async(prepare)("live_end", cast.session)
    user = cast.users[role]
    headers = [(b"origin", b"http://testserver")]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", cookie.encode()))
    ws = WebsocketCommunicator(application, websocket_path(route, cast.rows), headers=headers)
    connected, _ = await ws.connect(timeout=TIMEOUT)
    try:
        want = WEBSOCKET_EXPECTED[route][role]
        if want == "open":
            assert connected
            await still_open(ws)
        else:
            output = await ws.receive_output(timeout=TIMEOUT)
            assert output == {"type": "websocket.close", "code": want}
    finally:
        await ws.disconnect(timeout=TIMEOUT)
