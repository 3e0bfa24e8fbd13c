"""Running the live session: start and end, goals ticked off, roles rotated."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from sessions_app.forms import GoalStatusForm
from sessions_app.handover import next_handover
from sessions_app.live_fragments import panel_payload, rotation_order
from sessions_app.models import EnsembleSession, Event, Goal, Participant
from sessions_app.permissions import require_facilitator
from sessions_app.services.timeline import broadcast, lock, record_event
from sessions_app.services.validation import validated

Status = EnsembleSession.Status


def broadcast_panels(session: EnsembleSession, *panel_ids: str) -> None:
    """Re-render panels for everyone after commit, from the committed state."""

    def send() -> None:
        fresh = EnsembleSession.objects.select_related("feature").get(pk=session.pk)
        for panel_id in panel_ids:
            broadcast(fresh.pk, panel_payload(fresh, panel_id))

    transaction.on_commit(send)


def _name(user) -> str:
    return user.get_username()


@transaction.atomic
def start_session(*, session: EnsembleSession, by) -> EnsembleSession:
    require_facilitator(by, session)
    locked = lock(session)
    if locked.status != Status.PLANNING:
        raise PermissionDenied("Only a session that is being planned can start.")
    now = timezone.now()
    locked.status = Status.LIVE
    locked.started_at = now
    if locked.rotation_minutes:
        locked.rotation_due_at = now + timedelta(minutes=locked.rotation_minutes)
    locked.save(update_fields=["status", "started_at", "rotation_due_at"])
    record_event(
        locked, kind=Event.Kind.STARTED, summary=f"{_name(by)} started the session", actor=by
    )
    broadcast_panels(locked, "live-state", "live-room")
    return locked


@transaction.atomic
def end_session(*, session: EnsembleSession, by) -> EnsembleSession:
    require_facilitator(by, session)
    locked = lock(session)
    if locked.status != Status.LIVE:
        raise PermissionDenied("Only a live session can end.")
    locked.status = Status.REVIEW
    locked.ended_at = timezone.now()
    locked.rotation_due_at = None
    locked.rotation_paused_seconds = None
    locked.save(update_fields=["status", "ended_at", "rotation_due_at", "rotation_paused_seconds"])
    record_event(locked, kind=Event.Kind.ENDED, summary=f"{_name(by)} ended the session", actor=by)
    broadcast_panels(locked, "live-state", "live-room")
    return locked


@transaction.atomic
def set_goal_status(*, goal: Goal, by, data: Mapping[str, Any]) -> Goal:
    """Anyone in the team marks a goal covered, problem found, skipped, or open again."""
    status = validated(GoalStatusForm(data)).cleaned_data["status"]
    locked = lock(goal.session)
    if locked.status not in (Status.LIVE, Status.REVIEW):
        raise PermissionDenied("Goals are ticked off once the session has started.")
    if goal.status == status:
        return goal
    goal.status = status
    goal.save(update_fields=["status", "updated_at"])
    label = Goal.Status(status).label.lower()
    record_event(
        locked,
        kind=Event.Kind.GOAL_STATUS,
        summary=f"{_name(by)} marked “{Truncator(goal.text).chars(120)}” as {label}",
        actor=by,
    )
    broadcast_panels(locked, "live-goals")
    return goal


@transaction.atomic
def rotate_now(*, session: EnsembleSession, by) -> str:
    """Hand over: the navigator drives, the next person navigates. Returns who."""
    require_facilitator(by, session)
    locked = lock(session)
    if locked.status != Status.LIVE:
        raise PermissionDenied("Roles rotate while the session is live.")
    handover = next_handover(rotation_order(locked))
    if handover is None:
        raise PermissionDenied("Rotation needs at least two participants.")
    # Everyone who changes steps down first: one driver and one navigator at
    # every moment, as the database's unique indexes insist.
    Participant.objects.filter(pk__in=handover.roles).update(role=Participant.Role.OBSERVER)
    for pk, role in handover.roles.items():
        Participant.objects.filter(pk=pk).update(role=role)
    if locked.rotation_minutes and locked.rotation_paused_seconds is None:
        locked.rotation_due_at = timezone.now() + timedelta(minutes=locked.rotation_minutes)
        locked.save(update_fields=["rotation_due_at"])
    record_event(locked, kind=Event.Kind.ROTATED, summary=f"Handover: {handover.summary}", actor=by)
    broadcast_panels(locked, "live-room", "live-state")
    return handover.summary


@transaction.atomic
def pause_rotation(*, session: EnsembleSession, by) -> None:
    require_facilitator(by, session)
    locked = lock(session)
    if locked.status != Status.LIVE or locked.rotation_due_at is None:
        raise PermissionDenied("There is no running rotation timer to pause.")
    left = max(0, int((locked.rotation_due_at - timezone.now()).total_seconds()))
    locked.rotation_paused_seconds = left
    locked.rotation_due_at = None
    locked.save(update_fields=["rotation_paused_seconds", "rotation_due_at"])
    record_event(
        locked,
        kind=Event.Kind.ROTATION_PAUSED,
        summary=f"{_name(by)} paused the rotation timer",
        actor=by,
    )
    broadcast_panels(locked, "live-state")


@transaction.atomic
def resume_rotation(*, session: EnsembleSession, by) -> None:
    require_facilitator(by, session)
    locked = lock(session)
    if locked.status != Status.LIVE or locked.rotation_paused_seconds is None:
        raise PermissionDenied("The rotation timer is not paused.")
    locked.rotation_due_at = timezone.now() + timedelta(seconds=locked.rotation_paused_seconds)
    locked.rotation_paused_seconds = None
    locked.save(update_fields=["rotation_paused_seconds", "rotation_due_at"])
    record_event(
        locked,
        kind=Event.Kind.ROTATION_RESUMED,
        summary=f"{_name(by)} resumed the rotation timer",
        actor=by,
    )
    broadcast_panels(locked, "live-state")
