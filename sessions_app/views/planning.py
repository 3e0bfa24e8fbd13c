"""Planning a session, and its page: details, the goals board and roles."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from sessions_app.forms import (
    DashboardLinkFormSet,
    GoalForm,
    MergeGoalsForm,
    ParticipantForm,
    RotationForm,
    SessionForm,
)
from sessions_app.models import EnsembleSession, Goal, Participant
from sessions_app.permissions import can_facilitate, current_membership, session_for
from sessions_app.services import sessions
from sessions_app.services.validation import InvalidInput

User = get_user_model()
PLAN_PAGE = "sessions_app/session_plan.html"


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


def contributors(session: EnsembleSession) -> list:
    """Who has added goals so far, among the people expected to contribute.

    The expected people are the facilitator and the session's participants
    once the facilitator has named them, and the whole team before that.
    """
    participant_ids = list(session.participants.values_list("user_id", flat=True))
    if participant_ids:
        people = User.objects.filter(pk__in=[*participant_ids, session.facilitator_id])
    else:
        people = User.objects.filter(memberships__team_id=session.feature.team_id)
    goals_here = Count("goals", filter=Q(goals__session=session))
    return list(people.annotate(goal_count=goals_here).order_by("username"))


def plan_context(
    request: HttpRequest,
    session: EnsembleSession,
    *,
    goal_form: GoalForm | None = None,
    merge_form: MergeGoalsForm | None = None,
    participant_form: ParticipantForm | None = None,
    rotation_form: RotationForm | None = None,
    role_errors: dict | None = None,
    notice: str = "",
) -> dict:
    """Everything the plan page and its live fragments need, in a fixed number of queries."""
    perspective = request.GET.get("perspective", "")
    if perspective not in Goal.Perspective.values:
        perspective = ""
    goals = Goal.objects.filter(session=session)
    perspective_counts = dict(
        goals.values_list("perspective").annotate(n=Count("id")).values_list("perspective", "n")
    )
    board = goals.for_board(request.user)
    if perspective:
        board = board.filter(perspective=perspective)
    people = contributors(session)
    facilitating = can_facilitate(request.user, session)
    return {
        "session": session,
        "feature": session.feature,
        "can_facilitate": facilitating,
        "goals": list(board),
        "goal_total": sum(perspective_counts.values()),
        "perspective": perspective,
        "perspectives": [
            (value, label, perspective_counts.get(value, 0))
            for value, label in Goal.Perspective.choices
        ],
        "goal_form": goal_form or GoalForm(),
        "merge_form": merge_form or (MergeGoalsForm(session=session) if facilitating else None),
        "contributors": people,
        "contributed": sum(1 for person in people if person.goal_count),
        "participants": list(session.participants.select_related("user")),
        "roles": Participant.Role.choices,
        "participant_form": participant_form
        or (ParticipantForm(session=session) if facilitating else None),
        "rotation_form": rotation_form or RotationForm(instance=session),
        "role_errors": role_errors or {},
        "notice": notice,
    }


def invalid_status(request: HttpRequest) -> int:
    """422 lets htmx swap the form with its errors in; a plain form gets 400."""
    return 422 if request.htmx else 400


def render_plan(
    request: HttpRequest,
    session: EnsembleSession,
    *,
    fragment: str = "",
    status: int = 200,
    **ctx,
) -> HttpResponse:
    """The whole plan page, or one of its fragments for an htmx request."""
    partial = fragment and request.htmx and not request.htmx.history_restore_request
    template = f"{PLAN_PAGE}#{fragment}" if partial else PLAN_PAGE
    return render(request, template, plan_context(request, session, **ctx), status=status)


@login_required
def session_plan(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    # htmx asks for the board alone when filtering or cancelling an edit.
    return render_plan(request, session, fragment="goal-board")
