from __future__ import annotations

from django.http import HttpRequest

from sessions_app.models import Team
from sessions_app.permissions import current_membership


def current_team(request: HttpRequest) -> dict:
    """The team switcher in the header: the current team and the user's others."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    membership = current_membership(request)
    return {
        "current_team": membership.team if membership else None,
        "my_teams": Team.objects.for_member(request.user),
    }
