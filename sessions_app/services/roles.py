"""Who plays which role in a session, and the order roles rotate in."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from sessions_app.forms import ParticipantForm, RoleForm, RotationForm
from sessions_app.models import EnsembleSession, Event, Participant
from sessions_app.permissions import require_facilitator
from sessions_app.services.live import broadcast_panels
from sessions_app.services.timeline import lock, record_event
from sessions_app.services.validation import InvalidInput, validated


def _conflict(form, session: EnsembleSession, user) -> InvalidInput:
    # The form checks roles and participants, but two facilitator tabs can race
    # past it; the database's unique indexes have the last word.
    if session.participants.filter(user=user).exists():
        form.add_error(None, f"{user.get_username()} already takes part in this session.")
    else:
        form.add_error("role", "Someone else took this role just now; reload and try again.")
    return InvalidInput(form)


def _describe(participant: Participant) -> str:
    return f"{participant.user.get_username()} is {participant.get_role_display().lower()}"


def _announce_if_live(locked: EnsembleSession, by, summary: str) -> None:
    """During the live session, a change of roles is an event everyone sees.

    Callers lock the session before they touch a participant, in the same order
    as a rotation does, so the two cannot deadlock."""
    if locked.status != EnsembleSession.Status.LIVE:
        return
    record_event(locked, kind=Event.Kind.ROLE_CHANGED, summary=summary, actor=by)
    broadcast_panels(locked, "live-room")


def add_participant(*, session: EnsembleSession, by, data: Mapping[str, Any]) -> Participant:
    require_facilitator(by, session)
    form = validated(ParticipantForm(data, session=session))
    last = session.participants.aggregate(last=Max("rotation_position"))["last"]
    try:
        with transaction.atomic():
            locked = lock(session)
            participant = Participant.objects.create(
                session=session,
                user=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
                rotation_position=0 if last is None else last + 1,
            )
            _announce_if_live(locked, by, f"{_describe(participant)} from now on")
    except IntegrityError as error:
        raise _conflict(form, session, form.cleaned_data["user"]) from error
    return participant


def change_role(*, participant: Participant, by, data: Mapping[str, Any]) -> Participant:
    require_facilitator(by, participant.session)
    form = validated(RoleForm(data, participant=participant))
    participant.role = form.cleaned_data["role"]
    try:
        with transaction.atomic():
            locked = lock(participant.session)
            participant.save(update_fields=["role"])
            _announce_if_live(locked, by, f"{_describe(participant)} now")
    except IntegrityError as error:
        # Only the role can clash here: the participant exists already.
        form.add_error("role", "Someone else took this role just now; reload and try again.")
        raise InvalidInput(form) from error
    return participant


def remove_participant(*, participant: Participant, by) -> None:
    require_facilitator(by, participant.session)
    with transaction.atomic():
        locked = lock(participant.session)
        participant.delete()
        name = participant.user.get_username()
        _announce_if_live(locked, by, f"{name} left the session")


@transaction.atomic
def move_in_rotation(*, participant: Participant, by, up: bool) -> None:
    """Swap the participant with their neighbour in the rotation order."""
    require_facilitator(by, participant.session)
    locked = lock(participant.session)
    order = list(locked.participants.order_by("rotation_position", "id"))
    index = next(i for i, p in enumerate(order) if p.pk == participant.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(order):
        return
    order[index], order[other] = order[other], order[index]
    for position, member in enumerate(order):
        member.rotation_position = position
    Participant.objects.bulk_update(order, ["rotation_position"])
    names = ", ".join(member.user.get_username() for member in order)
    _announce_if_live(locked, by, f"Rotation order is now {names}")


def set_rotation(*, session: EnsembleSession, by, data: Mapping[str, Any]) -> EnsembleSession:
    require_facilitator(by, session)
    form = validated(RotationForm(data, instance=session))
    with transaction.atomic():
        locked = lock(session)
        minutes = form.cleaned_data["rotation_minutes"]
        locked.rotation_minutes = minutes
        if locked.status == EnsembleSession.Status.LIVE:
            # A new rhythm starts a fresh countdown now, or stops it.
            due = timezone.now() + timedelta(minutes=minutes) if minutes else None
            locked.rotation_due_at = due
            locked.rotation_paused_seconds = None
            summary = f"Roles rotate every {minutes} minutes" if minutes else "Roles stop rotating"
            record_event(locked, kind=Event.Kind.ROTATION_CHANGED, summary=summary, actor=by)
            broadcast_panels(locked, "live-state")
        fields = ["rotation_minutes", "rotation_due_at", "rotation_paused_seconds"]
        locked.save(update_fields=fields)
    session.rotation_minutes = locked.rotation_minutes
    return locked
