"""A feature's rollout plan: stages move pending → approved → enabled (or paused),
and past the internal tenant only a session's decision lets a stage be approved.
Every change is kept in the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db import transaction
from django.db.models import Max

from sessions_app.models import Decision, EnsembleSession, Feature, RolloutChange, RolloutStage
from sessions_app.permissions import require_owner
from sessions_app.services import webhooks

Status = RolloutStage.Status
# The first stage is the internal tenant, where sessions test: it needs no decision.
UNGATED_POSITIONS = 1


class RolloutRefused(Exception):
    """A rule of the plan says no; the message says which and why."""


@dataclass(frozen=True)
class Gate:
    """Whether stages past the internal tenant may be approved, and why (not)."""

    open: bool
    reason: str
    decision: Decision | None


def gate(feature: Feature) -> Gate:
    """The feature's latest decision decides: go opens the gate, go with conditions
    opens it once its follow-ups are done, no-go (or none at all) keeps it shut."""
    decision = (
        Decision.objects.filter(session__feature=feature)
        .select_related("session")
        .order_by("-decided_at", "-id")
        .first()
    )
    if decision is None:
        return Gate(False, "No session of this feature has a decision yet.", None)
    title = decision.session.title
    if decision.outcome == Decision.Outcome.NO_GO:
        return Gate(False, f"No-go in “{title}”: {decision.rationale}", decision)
    if decision.outcome == Decision.Outcome.GO_WITH_CONDITIONS:
        open_items = decision.session.follow_ups.filter(done=False).count()
        if open_items:
            return Gate(
                False,
                f"Go with conditions in “{title}”: {open_items} follow-up(s) still open.",
                decision,
            )
    return Gate(True, f"{decision.get_outcome_display()} in “{title}”.", decision)


def _log(feature, actor, action, stage=None, detail="", reason="") -> None:
    """Keep the change in the audit trail, and tell the team's webhooks."""
    change = RolloutChange.objects.create(
        feature=feature,
        stage_name=stage.name if stage else "",
        action=action,
        detail=detail,
        reason=reason,
        actor=actor,
    )
    webhooks.queue(
        team=feature.team,
        event="rollout.stage_changed",
        payload={
            "feature": {"name": feature.name, "flag_key": feature.flag_key},
            "stage": {"name": change.stage_name, "status": stage.status if stage else None},
            "action": action,
            "detail": detail,
            "reason": reason,
            "actor": actor.get_username() if actor else None,
        },
    )


def _locked_stages(feature: Feature) -> list[RolloutStage]:
    return list(
        RolloutStage.objects.select_for_update().filter(feature=feature).order_by("position")
    )


def _approve(stage: RolloutStage, by, *, override_reason: str = "") -> None:
    stages = _locked_stages(stage.feature)
    stage = next(s for s in stages if s.pk == stage.pk)
    if stage.status not in (Status.PENDING, Status.PAUSED):
        raise RolloutRefused(f"“{stage.name}” is {stage.get_status_display().lower()} already.")
    earlier = [s for s in stages if s.position < stage.position]
    if any(s.status not in (Status.APPROVED, Status.ENABLED) for s in earlier):
        raise RolloutRefused("Approve the stages before this one first.")
    decision = None
    if stage.position > UNGATED_POSITIONS:
        current = gate(stage.feature)
        if not current.open and not override_reason:
            raise RolloutRefused(f"“{stage.name}” is gated. {current.reason}")
        decision = current.decision if current.open else None
    stage.status = Status.APPROVED
    stage.gate_decision = decision
    stage.save(update_fields=["status", "gate_decision"])
    if override_reason:
        _log(stage.feature, by, "overrode the gate", stage, "approved", override_reason)
    else:
        detail = f"gated by {decision.get_outcome_display()}" if decision else ""
        _log(stage.feature, by, "approved", stage, detail)


@transaction.atomic
def approve(*, stage: RolloutStage, by) -> None:
    _approve(stage, by)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False, strip=True)


def _reason(text: str) -> str:
    """A reason as typed, validated like any form field (no NUL characters,
    which no database column takes, and a length the audit trail can show)."""
    form = ReasonForm({"reason": text})
    if not form.is_valid():
        raise RolloutRefused("A reason is text of at most 2,000 characters.")
    return form.cleaned_data["reason"]


@transaction.atomic
def override(*, stage: RolloutStage, by, reason: str) -> None:
    """An owner approves a gated stage anyway, and says why in writing."""
    require_owner(by, stage.feature.team)
    reason = _reason(reason)
    if not reason:
        raise RolloutRefused("Overriding a gate needs a written reason.")
    _approve(stage, by, override_reason=reason)


@transaction.atomic
def enable(*, stage: RolloutStage, by) -> None:
    stage = RolloutStage.objects.select_for_update().get(pk=stage.pk)
    if stage.status != Status.APPROVED:
        raise RolloutRefused("Only an approved stage can be enabled.")
    stage.status = Status.ENABLED
    stage.save(update_fields=["status"])
    _log(stage.feature, by, "enabled", stage)


@transaction.atomic
def pause(*, stage: RolloutStage, by, reason: str = "") -> None:
    reason = _reason(reason)
    stage = RolloutStage.objects.select_for_update().get(pk=stage.pk)
    if stage.status not in (Status.APPROVED, Status.ENABLED):
        raise RolloutRefused("Only an approved or enabled stage can be paused.")
    stage.status = Status.PAUSED
    stage.save(update_fields=["status"])
    _log(stage.feature, by, "paused", stage, reason=reason)


def pause_for_no_go(*, session: EnsembleSession, decision: Decision, by) -> None:
    """A no-go pauses every stage past the internal tenant, and the trail says why."""
    reason = f"No-go in “{session.title}”: {decision.rationale}"
    for stage in _locked_stages(session.feature):
        if stage.position > UNGATED_POSITIONS and stage.status in (Status.APPROVED, Status.ENABLED):
            stage.status = Status.PAUSED
            stage.save(update_fields=["status"])
            _log(session.feature, by, "paused", stage, reason=reason)


# --- Editing the plan (pending stages only) -------------------------------------


class StageNameForm(forms.Form):
    name = forms.CharField(max_length=120, label="Stage name", strip=True)


def _name(data: Mapping[str, Any]) -> str:
    form = StageNameForm(data)
    if not form.is_valid():
        raise RolloutRefused("A stage needs a name of at most 120 characters.")
    return form.cleaned_data["name"]


def _pending(stage: RolloutStage) -> None:
    if stage.status != Status.PENDING:
        raise RolloutRefused("Only pending stages can be renamed, moved or removed.")


@transaction.atomic
def add_stage(*, feature: Feature, by, data: Mapping[str, Any]) -> RolloutStage:
    name = _name(data)
    last = feature.rollout_stages.aggregate(last=Max("position"))["last"] or 0
    stage = RolloutStage.objects.create(feature=feature, position=last + 1, name=name)
    _log(feature, by, "added", stage)
    return stage


@transaction.atomic
def rename_stage(*, stage: RolloutStage, by, data: Mapping[str, Any]) -> None:
    _pending(stage)
    old, stage.name = stage.name, _name(data)
    stage.save(update_fields=["name"])
    _log(stage.feature, by, "renamed", stage, f"was “{old}”")


@transaction.atomic
def move_stage(*, stage: RolloutStage, by, up: bool) -> None:
    _pending(stage)
    stages = _locked_stages(stage.feature)
    index = next(i for i, s in enumerate(stages) if s.pk == stage.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(stages) or stages[other].status != Status.PENDING:
        raise RolloutRefused("A pending stage moves only among pending stages.")
    stages[index].position, stages[other].position = stages[other].position, stages[index].position
    RolloutStage.objects.bulk_update([stages[index], stages[other]], ["position"])
    _log(stage.feature, by, "moved", stage, "earlier" if up else "later")


@transaction.atomic
def remove_stage(*, stage: RolloutStage, by) -> None:
    _pending(stage)
    stage.delete()
    _log(stage.feature, by, "removed", stage)
