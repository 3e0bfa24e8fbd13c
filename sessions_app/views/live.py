"""The live room: its page, the plain-form fallback for notes, and the
facilitator's controls. Everything live reaches the other pages over the
websocket, broadcast by the services."""

from __future__ import annotations

import uuid
from uuid import UUID

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from sessions_app.forms import NoteForm
from sessions_app.live_fragments import (
    LIVE_PAGE,
    alerts_context,
    goals_context,
    room_context,
    state_context,
    timeline,
)
from sessions_app.models import EnsembleSession, Event, Goal, Note, Participant
from sessions_app.permissions import can_facilitate, session_for
from sessions_app.services import alerts, live, notes, roles
from sessions_app.services.validation import InvalidInput

User = get_user_model()


def _page(request: HttpRequest, session: EnsembleSession, *, note_form=None, status=200):
    context = {
        **state_context(session),
        **goals_context(session),
        **room_context(session),
        **alerts_context(session),
        "watches_logs": session.participants.filter(
            user=request.user, role=Participant.Role.LOG_WATCHER
        ).exists(),
        "can_facilitate": can_facilitate(request.user, session),
        "now": timezone.now(),
        "timeline": timeline(session),
        "kinds": Note.Kind.choices,
        "members": User.objects.filter(memberships__team_id=session.feature.team_id).order_by(
            "username"
        ),
        "note_form": note_form or NoteForm(session=session),
        "client_id": uuid.uuid4().hex,
        "text_max": Note.TEXT_MAX_LENGTH,
    }
    return render(request, LIVE_PAGE, context, status=status)


@login_required
def live_room(request: HttpRequest, session_id: UUID) -> HttpResponse:
    return _page(request, session_for(request.user, session_id))


def _back(request: HttpRequest, session: EnsembleSession, notice: str = "") -> HttpResponse:
    """htmx gets nothing to swap (the websocket brings the change to every page);
    a plain form goes back to the room."""
    if request.htmx:
        return HttpResponse(status=204)
    if notice:
        messages.success(request, notice)
    return redirect(reverse("live_room", kwargs={"session_id": session.pk}))


@login_required
@require_POST
def note_add(request: HttpRequest, session_id: UUID) -> HttpResponse:
    """The plain-form way to post a note, for a browser without the live client."""
    session = session_for(request.user, session_id)
    try:
        notes.post_note(session=session, author=request.user, data=request.POST)
    except InvalidInput as invalid:
        return _page(request, session, note_form=invalid.form, status=400)
    return _back(request, session, "Note added.")


@login_required
@require_POST
def start(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    live.start_session(session=session, by=request.user)
    return _back(request, session, "The session is live.")


@login_required
@require_POST
def end(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    live.end_session(session=session, by=request.user)
    return _back(request, session, "The session has ended; it is now in review.")


@login_required
@require_POST
def rotate(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    summary = live.rotate_now(session=session, by=request.user)
    return _back(request, session, f"Handover: {summary}.")


@login_required
@require_POST
def pause(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    live.pause_rotation(session=session, by=request.user)
    return _back(request, session, "Rotation timer paused.")


@login_required
@require_POST
def resume(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    live.resume_rotation(session=session, by=request.user)
    return _back(request, session, "Rotation timer resumed.")


def _panel(request: HttpRequest, session: EnsembleSession, partial: str, context, status=200):
    if not request.htmx:
        return None
    return render(request, f"{LIVE_PAGE}#{partial}", context, status=status)


@login_required
@require_POST
def goal_status(request: HttpRequest, session_id: UUID, goal_id: int) -> HttpResponse:
    session = session_for(request.user, session_id)
    goal = get_object_or_404(Goal, pk=goal_id, session=session)
    goal.session = session
    try:
        live.set_goal_status(goal=goal, by=request.user, data=request.POST)
    except (InvalidInput, PermissionDenied) as refused:
        status = 422 if isinstance(refused, InvalidInput) else 403
        return HttpResponse("That status cannot be set.", status=status)
    panel = _panel(request, session, "goals", goals_context(session))
    return panel or _back(request, session)


@login_required
@require_POST
def role(request: HttpRequest, session_id: UUID, participant_id: int) -> HttpResponse:
    session = session_for(request.user, session_id)
    participant = get_object_or_404(
        Participant.objects.select_related("user"), pk=participant_id, session=session
    )
    participant.session = session
    try:
        roles.change_role(participant=participant, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        error = " ".join(str(e) for e in invalid.form.errors.get("role", [])) or "Not changed."
        context = {**room_context(session), "role_error": error}
        panel = _panel(request, session, "room", context, status=422)
        if panel:
            return panel
        messages.error(request, error)
        return _back(request, session)
    return _panel(request, session, "room", room_context(session)) or _back(request, session)


# --- Alerts ---------------------------------------------------------------------


@login_required
@require_POST
def alert_note(request: HttpRequest, session_id: UUID, event_id: int) -> HttpResponse:
    """One click: an alert of this session's timeline becomes an error note."""
    session = session_for(request.user, session_id)
    event = get_object_or_404(
        Event.objects.select_related("alert"), pk=event_id, session=session, alert__isnull=False
    )
    try:
        note = alerts.note_from_alert(
            session=session, event=event, by=request.user, goal=request.POST.get("goal", "")
        )
    except InvalidInput as invalid:
        error = " ".join(str(e) for errors in invalid.form.errors.values() for e in errors)
        if request.htmx:
            return HttpResponse(error, status=422)
        messages.error(request, error)
        return _back(request, session)
    return _back(request, session, f"Alert written up as error #{note.seq}.")


@login_required
@require_POST
def alert_tenants(request: HttpRequest, session_id: UUID) -> HttpResponse:
    """The facilitator's choice: other tenants' alerts muted, or hidden."""
    session = session_for(request.user, session_id)
    try:
        alerts.set_other_tenant_alerts(
            session=session, by=request.user, choice=request.POST.get("other_tenants", "")
        )
    except alerts.UnknownChoice as unknown:
        return HttpResponse(str(unknown), status=400)
    return _back(request, session, "Alert setting saved.")


@login_required
@require_GET
def earlier(request: HttpRequest, session_id: UUID) -> HttpResponse:
    """Older notes and events, for the live client's "Show earlier notes"."""
    session = session_for(request.user, session_id)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponse("Say which notes: ?before=<seq>.", status=400)
    page = timeline(session, before=before)
    response = render(request, f"{LIVE_PAGE}#earlier", {"timeline": page})
    # Where the next "earlier" starts; empty once the start of the session is here.
    response["X-Earlier"] = "" if page.earlier is None else str(page.earlier)
    return response
