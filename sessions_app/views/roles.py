"""The facilitator's roles panel: who takes part, in which role, in which order."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from sessions_app.models import EnsembleSession, Participant
from sessions_app.permissions import session_for
from sessions_app.services import roles
from sessions_app.services.validation import InvalidInput
from sessions_app.views.plan_page import render_invalid, render_plan

ROLES = "roles"


def _participant_for(request: HttpRequest, session_id: UUID, participant_id: int) -> Participant:
    session = session_for(request.user, session_id)
    participant = get_object_or_404(
        Participant.objects.select_related("user"), pk=participant_id, session=session
    )
    participant.session = session
    return participant


def _roles_updated(request: HttpRequest, session: EnsembleSession, notice: str) -> HttpResponse:
    if request.htmx:
        return render_plan(request, session, fragment=ROLES, notice=notice)
    messages.success(request, notice)
    return redirect(reverse("session_plan", kwargs={"session_id": session.pk}) + "#roles")


@login_required
@require_POST
def participant_add(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    try:
        participant = roles.add_participant(session=session, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        return render_invalid(request, session, fragment=ROLES, participant_form=invalid.form)
    name = participant.user.get_username()
    return _roles_updated(request, session, f"{name} joins as {participant.get_role_display()}.")


@login_required
@require_POST
def participant_role(request: HttpRequest, session_id: UUID, participant_id: int) -> HttpResponse:
    participant = _participant_for(request, session_id, participant_id)
    try:
        roles.change_role(participant=participant, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        errors = {participant.pk: invalid.form.errors.get("role")}
        return render_invalid(request, participant.session, fragment=ROLES, role_errors=errors)
    name = participant.user.get_username()
    return _roles_updated(
        request, participant.session, f"{name} is now {participant.get_role_display()}."
    )


@login_required
@require_POST
def participant_remove(request: HttpRequest, session_id: UUID, participant_id: int) -> HttpResponse:
    participant = _participant_for(request, session_id, participant_id)
    roles.remove_participant(participant=participant, by=request.user)
    name = participant.user.get_username()
    return _roles_updated(request, participant.session, f"{name} removed from the session.")


@login_required
@require_POST
def participant_move(request: HttpRequest, session_id: UUID, participant_id: int) -> HttpResponse:
    participant = _participant_for(request, session_id, participant_id)
    up = request.POST.get("direction") == "up"
    roles.move_in_rotation(participant=participant, by=request.user, up=up)
    return _roles_updated(request, participant.session, "Rotation order changed.")


@login_required
@require_POST
def rotation(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    try:
        roles.set_rotation(session=session, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        return render_invalid(request, session, fragment=ROLES, rotation_form=invalid.form)
    if session.rotation_minutes:
        return _roles_updated(
            request, session, f"Roles rotate every {session.rotation_minutes} minutes."
        )
    return _roles_updated(request, session, "Roles do not rotate.")
