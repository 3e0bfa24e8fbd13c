"""The plan page (details, goals board, roles) and its fragments.

The page and every action on it render through `render_plan`, so a fragment
swapped in by htmx is exactly what the page shows.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from sessions_app.forms import GoalForm, MergeGoalsForm, ParticipantForm, RotationForm
from sessions_app.models import EnsembleSession, Goal, Participant
from sessions_app.permissions import can_facilitate

User = get_user_model()
PLAN_PAGE = "sessions_app/session_plan.html"


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
    response = render(request, template, plan_context(request, session, **ctx), status=status)
    # One URL answers with the page or a fragment: caches and the back button must tell apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def render_invalid(
    request: HttpRequest, session: EnsembleSession, *, fragment: str, **forms
) -> HttpResponse:
    """The page, or the fragment for htmx, again: showing the submitted form's errors."""
    return render_plan(request, session, fragment=fragment, status=invalid_status(request), **forms)
