"""The rollout plan: a session's decision gates every stage past the internal
tenant, a no-go pauses the plan, an owner may override with a reason, and
every change is in the audit trail."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from sessions_app.models import Decision, FollowUp, RolloutChange, RolloutStage
from sessions_app.services import outcome, rollout
from sessions_app.services.features import create_feature
from tests.conftest import client_for

Status = RolloutStage.Status


@pytest.fixture
def plan(team):
    feature = create_feature(
        team=team, data={"name": "Bulk invoice export", "flag_key": "bulk-export"}
    )
    return feature, list(feature.rollout_stages.order_by("position"))


@pytest.fixture
def reviewed(plan, session, facilitator):
    """The plan's feature has a session that ended and awaits its decision."""
    feature, _ = plan
    session.feature = feature
    session.status = "review"
    session.save()
    return session


def decide(session, facilitator, outcome_value: str, **extra) -> Decision:
    data = {"outcome": outcome_value, "rationale": "Because we saw it work.", **extra}
    return outcome.record_decision(session=session, by=facilitator, data=data)


def statuses(feature) -> list[str]:
    return list(feature.rollout_stages.order_by("position").values_list("status", flat=True))


def stage_url(stage, action: str) -> str:
    return reverse(
        "rollout_stage",
        kwargs={"feature_id": stage.feature_id, "stage_id": stage.pk, "action": action},
    )


def test_the_internal_tenant_needs_no_decision(plan, facilitator):
    feature, (internal, *_) = plan
    rollout.approve(stage=internal, by=facilitator)
    rollout.enable(stage=internal, by=facilitator)
    assert statuses(feature) == ["enabled", "pending", "pending", "pending"]


def test_the_next_stage_is_gated_until_a_go(plan, reviewed, facilitator, teammate_client):
    feature, (internal, pilot, *_) = plan
    rollout.approve(stage=internal, by=facilitator)
    response = teammate_client.post(stage_url(pilot, "approve"), follow=True)
    assert "is gated. No session of this feature has a decision yet." in response.content.decode()
    assert statuses(feature)[1] == "pending"

    decision = decide(reviewed, facilitator, "go")
    teammate_client.post(stage_url(pilot, "approve"))
    pilot.refresh_from_db()
    assert (pilot.status, pilot.gate_decision) == (Status.APPROVED, decision)
    page = teammate_client.get(reverse("feature_detail", kwargs={"feature_id": feature.pk}))
    assert f"gated by Go in “{reviewed.title}”" in page.content.decode()


def test_go_with_conditions_opens_the_gate_once_its_follow_ups_are_done(
    plan, reviewed, facilitator, teammate
):
    feature, (internal, pilot, *_) = plan
    follow_up = FollowUp.objects.create(session=reviewed, text="Fix CSV quoting", owner=teammate)
    decide(reviewed, facilitator, "go_with_conditions")
    rollout.approve(stage=internal, by=facilitator)
    with pytest.raises(rollout.RolloutRefused, match="1 follow-up"):
        rollout.approve(stage=pilot, by=facilitator)
    outcome.set_follow_up_done(follow_up=follow_up, by=teammate, done=True)
    rollout.approve(stage=pilot, by=facilitator)
    assert statuses(feature)[:2] == ["approved", "approved"]


def test_stages_are_approved_in_order(plan, reviewed, facilitator):
    feature, (_, pilot, quarter, _) = plan
    decide(reviewed, facilitator, "go")
    with pytest.raises(rollout.RolloutRefused, match="before this one first"):
        rollout.approve(stage=quarter, by=facilitator)
    assert statuses(feature) == ["pending"] * 4


def test_a_no_go_pauses_the_plan_and_says_why(plan, reviewed, facilitator):
    feature, (internal, pilot, *_) = plan
    decide(reviewed, facilitator, "go")
    for stage in (internal, pilot):
        rollout.approve(stage=stage, by=facilitator)
        rollout.enable(stage=stage, by=facilitator)
    decide(reviewed, facilitator, "no_go", revision_reason="Exports corrupt totals")
    assert statuses(feature) == ["enabled", "paused", "pending", "pending"]
    paused = RolloutChange.objects.filter(feature=feature, action="paused").get()
    assert paused.reason.startswith(f"No-go in “{reviewed.title}”")
    assert not rollout.gate(feature).open


def test_an_owner_overrides_a_gate_only_with_a_written_reason(plan, facilitator, teammate):
    feature, (internal, pilot, *_) = plan
    rollout.approve(stage=internal, by=facilitator)
    with pytest.raises(rollout.RolloutRefused, match="written reason"):
        rollout.override(stage=pilot, by=facilitator, reason="  ")
    with pytest.raises(PermissionDenied):
        rollout.override(stage=pilot, by=teammate, reason="I am in a hurry")
    assert statuses(feature)[1] == "pending"
    rollout.override(stage=pilot, by=facilitator, reason="Pilot customer contract date")
    change = RolloutChange.objects.filter(feature=feature, action="overrode the gate").get()
    assert (change.actor, change.reason) == (facilitator, "Pilot customer contract date")
    assert statuses(feature)[1] == "approved"


def test_pending_stages_are_added_renamed_moved_and_removed(plan, facilitator, teammate_client):
    feature, (internal, pilot, quarter, everyone) = plan
    teammate_client.post(reverse("rollout_add", kwargs={"feature_id": feature.pk}), {"name": "EU"})
    teammate_client.post(stage_url(pilot, "rename"), {"name": "Design partners"})
    teammate_client.post(stage_url(quarter, "up"))
    teammate_client.post(stage_url(everyone, "remove"))
    names = list(feature.rollout_stages.order_by("position").values_list("name", flat=True))
    assert names == ["Internal tenant", "25% of tenants", "Design partners", "EU"]
    actions = set(RolloutChange.objects.values_list("action", flat=True))
    assert actions == {"added", "renamed", "moved", "removed"}


def test_a_stage_that_is_no_longer_pending_cannot_be_edited(plan, facilitator, teammate_client):
    feature, (internal, *_) = plan
    rollout.approve(stage=internal, by=facilitator)
    response = teammate_client.post(stage_url(internal, "remove"), follow=True)
    assert "Only pending stages can be renamed, moved or removed." in response.content.decode()
    assert feature.rollout_stages.filter(pk=internal.pk).exists()


def test_an_empty_stage_name_is_refused(plan, teammate_client):
    feature, _ = plan
    response = teammate_client.post(
        reverse("rollout_add", kwargs={"feature_id": feature.pk}), {"name": " "}, follow=True
    )
    assert "A stage needs a name" in response.content.decode()
    assert feature.rollout_stages.count() == 4


def test_an_unknown_action_is_not_found(plan, teammate_client):
    _, (internal, *_) = plan
    assert teammate_client.post(stage_url(internal, "explode")).status_code == 404


def test_every_change_is_in_the_audit_trail_on_the_page(plan, facilitator):
    feature, (internal, *_) = plan
    rollout.approve(stage=internal, by=facilitator)
    rollout.enable(stage=internal, by=facilitator)
    page = client_for(facilitator).get(reverse("feature_detail", kwargs={"feature_id": feature.pk}))
    content = page.content.decode()
    assert "dana enabled “Internal tenant”" in content
    assert "dana approved “Internal tenant”" in content
