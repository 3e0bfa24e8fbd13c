"""The read API: personal tokens, stored hashed, that read only their user's teams."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from sessions_app.models import ApiToken
from sessions_app.models.tokens import token_digest
from sessions_app.services import outcome, rollout
from sessions_app.services.features import create_feature
from sessions_app.services.tokens import create_token
from tests.factories import FeatureFactory


@pytest.fixture
def feature_with_plan(team):
    return create_feature(team=team, data={"name": "Bulk export", "flag_key": "bulk-export"})


def api(raw: str | None, flag_key: str = "bulk-export", **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    url = reverse("api_feature_rollout", kwargs={"flag_key": flag_key})
    return Client().get(url, params, **headers)


def test_a_token_reads_the_rollout_plan_and_its_gate(
    feature_with_plan, session, facilitator, teammate
):
    session.feature = feature_with_plan
    session.status = "review"
    session.save()
    outcome.record_decision(
        session=session, by=facilitator, data={"outcome": "go", "rationale": "Solid."}
    )
    internal, pilot = feature_with_plan.rollout_stages.order_by("position")[:2]
    rollout.approve(stage=internal, by=facilitator)
    rollout.approve(stage=pilot, by=facilitator)
    _, raw = create_token(user=teammate, name="Pipeline")

    response = api(raw)

    assert response.status_code == 200
    body = response.json()
    assert body["feature"]["flag_key"] == "bulk-export"
    assert body["gate"]["open"] is True
    assert body["gate"]["decision"]["outcome"] == "go"
    assert [(s["name"], s["status"], s["may_enable"]) for s in body["stages"]] == [
        ("Internal tenant", "approved", True),
        ("Pilot customers", "approved", True),
        ("25% of tenants", "pending", False),
        ("All tenants", "pending", False),
    ]
    assert body["stages"][1]["gate_decision"]["session"] == session.title


def test_tokens_are_stored_only_as_digests(teammate):
    token, raw = create_token(user=teammate, name="Pipeline")
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in (stored.digest, stored.prefix)
    assert stored.digest == token_digest(raw)


@pytest.mark.parametrize("raw", [None, "", "ens_not-a-real-token"])
def test_a_missing_or_unknown_token_is_refused(feature_with_plan, raw):
    response = api(raw)
    assert response.status_code == 401
    assert "error" in response.json()


def test_a_revoked_token_reads_nothing(feature_with_plan, teammate, teammate_client):
    token, raw = create_token(user=teammate, name="Pipeline")
    assert api(raw).status_code == 200
    teammate_client.post(reverse("token_revoke", kwargs={"token_id": token.pk}))
    assert api(raw).status_code == 401


def test_a_token_never_reads_another_teams_feature(outsider):
    FeatureFactory(flag_key="their-flag")
    _, raw = create_token(user=outsider, name="Theirs")
    response = api(raw, flag_key="their-flag")
    assert response.status_code == 404
    assert "No feature" in response.json()["error"]


def test_an_unknown_flag_key_is_not_found(feature_with_plan, teammate):
    _, raw = create_token(user=teammate, name="Pipeline")
    assert api(raw, flag_key="no-such-flag").status_code == 404


def test_only_its_owner_revokes_a_token(teammate, facilitator_client):
    token, raw = create_token(user=teammate, name="Pipeline")
    response = facilitator_client.post(reverse("token_revoke", kwargs={"token_id": token.pk}))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_account_page_shows_a_new_token_once(teammate_client):
    created = teammate_client.post(reverse("account"), {"name": "Deploys"}).content.decode()
    token = ApiToken.objects.get()
    assert "ens_" in created and token.prefix in created
    again = teammate_client.get(reverse("account")).content.decode()
    assert "Deploys" in again
    assert 'aria-label="New API token"' not in again


def test_the_command_prints_a_working_token(feature_with_plan, teammate):
    out = StringIO()
    call_command("create_api_token", teammate.username, stdout=out)
    assert api(out.getvalue().strip()).status_code == 200


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user"):
        call_command("create_api_token", "nobody")
    assert not ApiToken.objects.exists()
