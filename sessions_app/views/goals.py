"""The goals board's actions. Each answers htmx with the board, and a plain
form with a redirect back to the page (or the page with its errors)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from sessions_app.forms import GoalForm
from sessions_app.models import EnsembleSession, Goal
from sessions_app.permissions import may_change_goal, session_for
from sessions_app.services import goals
from sessions_app.services.validation import InvalidInput
from sessions_app.views.plan_page import invalid_status, render_invalid, render_plan

BOARD = "goal-board"


def _goal_for(request: HttpRequest, session_id: UUID, goal_id: int) -> Goal:
    session = session_for(request.user, session_id)
    goal = get_object_or_404(Goal.objects.select_related("author"), pk=goal_id, session=session)
    goal.session = session
    return goal


def _board_updated(request: HttpRequest, session: EnsembleSession, notice: str) -> HttpResponse:
    if request.htmx:
        response = render_plan(request, session, fragment=BOARD, notice=notice)
        # An inline edit form targets its own list item; the answer is the whole board.
        return retarget(reswap(response, "outerHTML"), "#goal-board")
    messages.success(request, notice)
    url = reverse("session_plan", kwargs={"session_id": session.pk})
    query = request.GET.urlencode()
    return redirect(f"{url}?{query}#goals" if query else f"{url}#goals")


@login_required
@require_POST
def goal_add(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    try:
        goals.add_goal(session=session, author=request.user, data=request.POST)
    except InvalidInput as invalid:
        return render_invalid(request, session, fragment=BOARD, goal_form=invalid.form)
    return _board_updated(request, session, "Goal added.")


@login_required
@require_http_methods(["GET", "POST"])
def goal_edit(request: HttpRequest, session_id: UUID, goal_id: int) -> HttpResponse:
    goal = _goal_for(request, session_id, goal_id)
    if not may_change_goal(request.user, goal):
        raise PermissionDenied("Only the goal's author or the facilitator can edit it.")
    form = GoalForm(instance=goal)
    status = 200
    if request.method == "POST":
        try:
            goals.edit_goal(goal=goal, editor=request.user, data=request.POST)
        except InvalidInput as invalid:
            form, status = invalid.form, invalid_status(request)
        else:
            return _board_updated(request, goal.session, "Goal saved.")
    # Ids of its own: beside the board's add form, "id_text" would label the wrong field.
    form.auto_id = f"goal-{goal.pk}-%s"
    # Inside the board (htmx) the form swaps in place; on its own page it is a plain form.
    inline = bool(request.htmx)
    template = "sessions_app/goal_edit.html" + ("#goal-edit" if inline else "")
    context = {"goal": goal, "form": form, "inline": inline, "query": request.GET.urlencode()}
    return render(request, template, context, status=status)


@login_required
@require_POST
def goal_delete(request: HttpRequest, session_id: UUID, goal_id: int) -> HttpResponse:
    goal = _goal_for(request, session_id, goal_id)
    goals.delete_goal(goal=goal, by=request.user)
    return _board_updated(request, goal.session, "Goal deleted.")


@login_required
@require_POST
def goal_vote(request: HttpRequest, session_id: UUID, goal_id: int) -> HttpResponse:
    goal = _goal_for(request, session_id, goal_id)
    voted = goals.toggle_vote(goal=goal, voter=request.user)
    return _board_updated(request, goal.session, "Vote added." if voted else "Vote taken back.")


@login_required
@require_POST
def goal_must_cover(request: HttpRequest, session_id: UUID, goal_id: int) -> HttpResponse:
    goal = _goal_for(request, session_id, goal_id)
    must_cover = request.POST.get("must_cover") == "1"
    goals.set_must_cover(goal=goal, by=request.user, must_cover=must_cover)
    return _board_updated(
        request,
        goal.session,
        "Marked as must-cover." if must_cover else "No longer must-cover.",
    )


@login_required
@require_POST
def goals_merge(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    try:
        goals.merge_goals(session=session, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        return render_invalid(request, session, fragment=BOARD, merge_form=invalid.form)
    return _board_updated(request, session, "Goals merged; their votes were carried over.")
