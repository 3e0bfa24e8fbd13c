from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from sessions_app.models import EnsembleSession, Feature
from sessions_app.permissions import current_membership

# The dashboard's sections, in the order a team lives them.
SECTIONS = [
    (EnsembleSession.Status.LIVE, "Live now"),
    (EnsembleSession.Status.PLANNING, "Upcoming"),
    (EnsembleSession.Status.REVIEW, "In review"),
    (EnsembleSession.Status.DECIDED, "Decided"),
]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return redirect("team_create")
    team = membership.team
    sessions = EnsembleSession.objects.filter(feature__team=team).select_related(
        "feature", "facilitator"
    )
    by_status: dict[str, list[EnsembleSession]] = {status: [] for status, _ in SECTIONS}
    for session in sessions:
        if session.status in by_status:
            by_status[session.status].append(session)
    return render(
        request,
        "sessions_app/dashboard.html",
        {
            "team": team,
            "features": Feature.objects.filter(team=team),
            "sections": [(status, title, by_status[status]) for status, title in SECTIONS],
        },
    )
