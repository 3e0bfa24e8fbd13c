"""The read API, for CI jobs and flag systems: "may stage X be enabled?"

GET /api/v1/features/<flag_key>/rollout with `Authorization: Bearer <token>`.
A token reads only its user's teams; anything else is 404, as for a page."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from sessions_app.models import Feature, RolloutStage
from sessions_app.services import rollout
from sessions_app.services.tokens import user_for


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="ensemble"'
    return response


def _decision(decision) -> dict | None:
    if decision is None:
        return None
    return {
        "outcome": decision.outcome,
        "session": decision.session.title,
        "session_id": str(decision.session_id),
        "decided_at": decision.decided_at.isoformat(),
    }


@require_GET
def feature_rollout(request: HttpRequest, flag_key: str) -> JsonResponse:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return _error(401, "Send a personal API token: Authorization: Bearer <token>.")
    user = user_for(raw.strip())
    if user is None:
        return _error(401, "That token is unknown or revoked.")
    features = Feature.objects.filter(flag_key=flag_key, team__memberships__user=user)
    if team := request.GET.get("team"):
        features = features.filter(team_id=team) if _is_uuid(team) else features.none()
    found = list(features.select_related("team")[:2])
    if not found:
        return _error(404, f"No feature with the flag key “{flag_key}” in your teams.")
    if len(found) > 1:
        return _error(400, "Several of your teams use this flag key: add ?team=<team id>.")
    feature = found[0]
    gate = rollout.gate(feature)
    stages = RolloutStage.objects.filter(feature=feature).select_related("gate_decision__session")
    return JsonResponse(
        {
            "feature": {
                "name": feature.name,
                "flag_key": feature.flag_key,
                "team": str(feature.team_id),
            },
            "gate": {
                "open": gate.open,
                "reason": gate.reason,
                "decision": _decision(gate.decision),
            },
            "stages": [
                {
                    "position": stage.position,
                    "name": stage.name,
                    "status": stage.status,
                    "may_enable": stage.status
                    in (RolloutStage.Status.APPROVED, RolloutStage.Status.ENABLED),
                    "gate_decision": _decision(stage.gate_decision),
                }
                for stage in stages.order_by("position")
            ],
        }
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
