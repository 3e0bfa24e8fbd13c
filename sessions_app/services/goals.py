"""The goals board: goals the ensemble wants covered, with votes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from sessions_app.forms import GoalForm, MergeGoalsForm
from sessions_app.models import EnsembleSession, Goal, GoalVote
from sessions_app.permissions import may_change_goal, require_facilitator
from sessions_app.services.live import broadcast_panels
from sessions_app.services.validation import InvalidInput, validated


def _refresh_live_room(session: EnsembleSession) -> None:
    """Goals can still change during the session: the live room shows them as they are."""
    if session.status in (EnsembleSession.Status.LIVE, EnsembleSession.Status.REVIEW):
        broadcast_panels(session, "live-goals", "note-goal")


def add_goal(*, session: EnsembleSession, author, data: Mapping[str, Any]) -> Goal:
    goal = validated(GoalForm(data)).save(commit=False)
    goal.session = session
    goal.author = author
    goal.save()
    _refresh_live_room(session)
    return goal


def edit_goal(*, goal: Goal, editor, data: Mapping[str, Any]) -> Goal:
    if not may_change_goal(editor, goal):
        raise PermissionDenied("Only the goal's author or the facilitator can edit it.")
    goal = validated(GoalForm(data, instance=goal)).save()
    _refresh_live_room(goal.session)
    return goal


def delete_goal(*, goal: Goal, by) -> None:
    if not may_change_goal(by, goal):
        raise PermissionDenied("Only the goal's author or the facilitator can delete it.")
    goal.delete()
    _refresh_live_room(goal.session)


def toggle_vote(*, goal: Goal, voter) -> bool:
    """Vote for the goal, or take the vote back. Returns whether the voter now votes."""
    with transaction.atomic():
        removed, _ = GoalVote.objects.filter(goal=goal, user=voter).delete()
        if removed:
            return False
        try:
            with transaction.atomic():
                GoalVote.objects.create(goal=goal, user=voter)
        except IntegrityError:  # a second click raced the first: one vote stands
            pass
    return True


def set_must_cover(*, goal: Goal, by, must_cover: bool) -> Goal:
    require_facilitator(by, goal.session)
    goal.must_cover = must_cover
    goal.save(update_fields=["must_cover", "updated_at"])
    _refresh_live_room(goal.session)
    return goal


@transaction.atomic
def merge_goals(*, session: EnsembleSession, by, data: Mapping[str, Any]) -> Goal:
    """Fold a duplicate into the goal kept: its votes carry over, nobody votes twice."""
    require_facilitator(by, session)
    form = validated(MergeGoalsForm(data, session=session))
    # Lock both goals (in a fixed order) so a vote or a reverse merge cannot interleave.
    pks = sorted([form.cleaned_data["duplicate"].pk, form.cleaned_data["keep"].pk])
    locked = {goal.pk: goal for goal in Goal.objects.select_for_update().filter(pk__in=pks)}
    duplicate = locked.get(form.cleaned_data["duplicate"].pk)
    keep = locked.get(form.cleaned_data["keep"].pk)
    if duplicate is None or keep is None:
        form.add_error(None, "One of these goals was just deleted or merged; reload the board.")
        raise InvalidInput(form)
    already_voting = GoalVote.objects.filter(goal=keep).values("user_id")
    GoalVote.objects.filter(goal=duplicate).exclude(user_id__in=already_voting).update(goal=keep)
    if duplicate.must_cover and not keep.must_cover:
        keep.must_cover = True
        keep.save(update_fields=["must_cover", "updated_at"])
    duplicate.delete()
    _refresh_live_room(session)
    return keep
