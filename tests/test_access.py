"""Every page and action of the app, walked from the URLconf so none is forgotten:
anonymous visitors are sent to log in, and members of another team get 404
and change nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from sessions_app.models import (
    Alert,
    ApiToken,
    ConfidenceVote,
    Decision,
    Event,
    FollowUp,
    Goal,
    Invite,
    Measurement,
    Metric,
    Note,
    Participant,
    RolloutStage,
    Webhook,
)
from sessions_app.services.tokens import create_token
from sessions_app.urls import urlpatterns
from tests.factories import GoalFactory, InviteFactory, ParticipantFactory

# Reachable without signing in, on purpose.
PUBLIC = {"signup", "invite_accept"}
# The API authenticates by token, not session (tests/test_api.py and
# tests/test_metrics_api.py cover it); the alert webhook by the secret in its
# URL (tests/test_alert_webhook.py).
TOKEN_AUTH = {"api_feature_rollout", "api_metric_measurements", "alert_webhook"}
# An invite link is a capability: whoever holds it may join, by design.
CAPABILITY = {"invite_accept"}
# Not tied to one team's row: an outsider uses them for their own team.
OWN_TEAM = {
    "dashboard",
    "signup",
    "team_create",
    "team",
    "invite_create",
    "feature_create",
    "session_create",
    "account",
    "webhook_add",
}


def named(patterns: list[URLPattern]) -> list[str]:
    return [pattern.name for pattern in patterns]


@pytest.fixture
def rows(session, facilitator, teammate):
    goal = GoalFactory(session=session, author=teammate, text="Untouched")
    participant = ParticipantFactory(session=session, user=teammate, role="observer")
    invite = InviteFactory(team=session.feature.team, created_by=facilitator)
    follow_up = FollowUp.objects.create(session=session, text="Untouched", owner=teammate)
    stage = RolloutStage.objects.create(feature=session.feature, position=1, name="Internal")
    token, _ = create_token(user=teammate, name="Pipeline")
    webhook = Webhook.objects.create(team=session.feature.team, url="https://hooks.example.com/")
    metric = Metric.objects.create(
        feature=session.feature, name="Untouched", key="untouched", baseline=40, target=70
    )
    alert = Alert.objects.create(feature=session.feature, shape="generic", title="Untouched")
    event = Event.objects.create(
        session=session, revision=999, kind=Event.Kind.ALERT, summary="Untouched", alert=alert
    )
    return {
        "session_id": session.pk,
        "feature_id": session.feature.pk,
        "team_id": session.feature.team.pk,
        "goal_id": goal.pk,
        "participant_id": participant.pk,
        "invite_id": invite.pk,
        "token": invite.token,
        "follow_up_id": follow_up.pk,
        "stage_id": stage.pk,
        "action": "approve",
        "token_id": token.pk,
        "flag_key": session.feature.flag_key,
        "webhook_id": webhook.pk,
        "metric_id": metric.pk,
        "metric_key": metric.key,
        "event_id": event.pk,
    }


def url_for(name: str, rows: dict) -> str:
    pattern = next(p for p in urlpatterns if p.name == name)
    kwargs = {key: rows[key] for key in pattern.pattern.converters}
    return reverse(name, kwargs=kwargs)


def snapshot(session) -> tuple:
    """What an outsider must not be able to change."""
    return (
        list(Goal.objects.values_list("pk", "text", "must_cover", "status")),
        list(Participant.objects.values_list("pk", "role", "rotation_position")),
        list(Invite.objects.values_list("pk", "revoked_at")),
        session.feature.team.memberships.count(),
        type(session)
        .objects.filter(pk=session.pk)
        .values_list("title", "rotation_minutes", "status", "revision")[0],
        Note.objects.count(),
        Event.objects.count(),
        list(FollowUp.objects.values_list("pk", "text", "done")),
        ConfidenceVote.objects.count(),
        Decision.objects.count(),
        list(RolloutStage.objects.values_list("pk", "name", "status", "position")),
        list(ApiToken.objects.values_list("pk", "revoked_at")),
        list(Webhook.objects.values_list("pk", "url")),
        list(Metric.objects.values_list("pk", "name", "key", "baseline", "target")),
        list(Measurement.objects.values_list("pk", "date", "value")),
        Alert.objects.count(),
        list(type(session.feature).objects.values_list("pk", "alert_token")),
        type(session).objects.filter(pk=session.pk).values_list("other_tenant_alerts")[0],
    )


@pytest.mark.parametrize("name", sorted(set(named(urlpatterns)) - PUBLIC - TOKEN_AUTH))
def test_anonymous_visitor_is_sent_to_log_in(name, rows):
    checked = 0
    for method in ("get", "post"):
        response = getattr(Client(), method)(url_for(name, rows))
        # Views that only take POST may answer 405 to GET before asking who you are.
        if response.status_code == 405:
            continue
        checked += 1
        assert response.status_code == 302, (name, method)
        assert response["Location"].startswith(reverse("login")), (name, method)
    assert checked, f"{name} answered neither GET nor POST"


@pytest.mark.parametrize(
    "name", sorted(set(named(urlpatterns)) - OWN_TEAM - CAPABILITY - TOKEN_AUTH)
)
def test_outsider_gets_404_and_changes_nothing(name, rows, session, outsider_client):
    before = snapshot(session)
    checked = 0
    for method in ("get", "post"):
        data = {
            "text": "Hijacked",
            "perspective": "other",
            "role": "driver",
            "must_cover": "1",
            "rotation_minutes": "5",
            "direction": "up",
            "title": "Hijacked",
            # A valid note and goal status, so only the refusal keeps them out.
            "kind": "bug",
            "client_id": "outsider-0001",
            "status": "covered",
            "other_tenants": "hide",
            "name": "Hijacked",
            "baseline": "1",
            "target": "2",
            "date": "2026-01-01",
            "value": "5",
        }
        response = getattr(outsider_client, method)(url_for(name, rows), data)
        if response.status_code == 405:
            continue
        checked += 1
        assert response.status_code == 404, (name, method, response.status_code)
    assert checked, f"{name} answered neither GET nor POST"
    assert snapshot(session) == before
