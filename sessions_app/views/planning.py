"""Planning a session: creating it, editing its plan, and its page."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from sessions_app.forms import DashboardLinkFormSet, SessionForm
from sessions_app.permissions import current_membership, require_facilitator, session_for
from sessions_app.services import sessions
from sessions_app.services.validation import InvalidInput
from sessions_app.views.plan_page import render_plan


@login_required
@require_http_methods(["GET", "POST"])
def session_create(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return redirect("team_create")
    team = membership.team
    features = list(team.features.values_list("pk", flat=True)[:2])
    # Preselect the feature the user came from, or the team's only one.
    feature = request.GET.get("feature") or (features[0] if len(features) == 1 else None)
    form = SessionForm(team=team, initial={"feature": feature, "facilitator": request.user.pk})
    links = DashboardLinkFormSet(prefix=sessions.LINKS_PREFIX)
    if request.method == "POST":
        try:
            session = sessions.plan_session(team=team, created_by=request.user, data=request.POST)
        except InvalidInput as invalid:
            form, links = invalid.form, invalid.related["links"]
        else:
            messages.success(request, "Session planned. Now collect the ensemble's goals.")
            return redirect("session_plan", session_id=session.pk)
    return render(
        request,
        "sessions_app/session_form.html",
        {"form": form, "links": links, "session": None},
        status=400 if form.is_bound else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def session_edit(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    require_facilitator(request.user, session)
    if request.method == "POST":
        try:
            sessions.update_session(session=session, by=request.user, data=request.POST)
        except InvalidInput as invalid:
            form, links = invalid.form, invalid.related["links"]
        else:
            messages.success(request, "Plan saved.")
            return redirect("session_plan", session_id=session.pk)
    else:
        form = SessionForm(instance=session, team=session.feature.team)
        links = DashboardLinkFormSet(instance=session, prefix=sessions.LINKS_PREFIX)
    return render(
        request,
        "sessions_app/session_form.html",
        {"form": form, "links": links, "session": session},
        status=400 if form.is_bound else 200,
    )


@login_required
def session_plan(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    # htmx asks for the board alone when filtering or cancelling an edit.
    return render_plan(request, session, fragment="goal-board")
