"""Who may see and do what. Every lookup of a team-owned row goes through here.

A row of another team is a 404, never a 403: outsiders learn nothing, not even
that it exists.
"""

from __future__ import annotations

from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from sessions_app.models import EnsembleSession, Feature, Membership, Team

CURRENT_TEAM_KEY = "current_team_id"


def session_for(user, session_id: UUID) -> EnsembleSession:
    return get_object_or_404(
        EnsembleSession.objects.for_member(user).select_related("feature__team", "facilitator"),
        pk=session_id,
    )


def feature_for(user, feature_id: UUID) -> Feature:
    return get_object_or_404(Feature.objects.for_member(user).select_related("team"), pk=feature_id)


def membership_in(user, team: Team) -> Membership | None:
    return Membership.objects.filter(user=user, team=team).first()


def is_owner(user, team: Team) -> bool:
    return Membership.objects.filter(user=user, team=team, role=Membership.Role.OWNER).exists()


def require_owner(user, team: Team) -> None:
    if not is_owner(user, team):
        raise PermissionDenied("Only an owner of the team can do this.")


def can_facilitate(user, session: EnsembleSession) -> bool:
    """The facilitator runs the session; a team owner can stand in for them."""
    return user.pk == session.facilitator_id or is_owner(user, session.feature.team)


def require_facilitator(user, session: EnsembleSession) -> None:
    if not can_facilitate(user, session):
        raise PermissionDenied("Only the session's facilitator can do this.")


def may_change_goal(user, goal) -> bool:
    """Authors change their own goals; the facilitator changes any."""
    return goal.author_id == user.pk or can_facilitate(user, goal.session)


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership of the team the user is working in (they may be in several)."""
    if not request.user.is_authenticated:
        return None
    if not hasattr(request, "_current_membership"):
        memberships = Membership.objects.filter(user=request.user).select_related("team")
        team_id = request.session.get(CURRENT_TEAM_KEY)
        chosen = memberships.filter(team_id=team_id).first() if team_id else None
        request._current_membership = chosen or memberships.order_by("joined_at").first()
    return request._current_membership


def set_current_team(request: HttpRequest, team: Team) -> None:
    request.session[CURRENT_TEAM_KEY] = str(team.pk)
    if hasattr(request, "_current_membership"):
        del request._current_membership
