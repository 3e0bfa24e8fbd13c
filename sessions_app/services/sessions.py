from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from sessions_app.forms import DashboardLinkFormSet, SessionForm
from sessions_app.models import EnsembleSession, Team
from sessions_app.permissions import require_facilitator
from sessions_app.services.validation import InvalidInput

LINKS_PREFIX = "links"


def _save(form: SessionForm, links: DashboardLinkFormSet) -> EnsembleSession:
    # Both are validated before either is saved, so every error shows at once
    # and nothing is stored from a half-valid plan.
    if not (form.is_valid() & links.is_valid()):
        raise InvalidInput(form, links=links)
    with transaction.atomic():
        session = form.save()
        links.instance = session
        links.save()
    return session


def plan_session(*, team: Team, created_by, data: Mapping[str, Any]) -> EnsembleSession:
    form = SessionForm(data, team=team)
    form.instance.created_by = created_by
    links = DashboardLinkFormSet(data, instance=EnsembleSession(), prefix=LINKS_PREFIX)
    return _save(form, links)


def update_session(*, session: EnsembleSession, by, data: Mapping[str, Any]) -> EnsembleSession:
    require_facilitator(by, session)
    form = SessionForm(data, instance=session, team=session.feature.team)
    links = DashboardLinkFormSet(data, instance=session, prefix=LINKS_PREFIX)
    return _save(form, links)
