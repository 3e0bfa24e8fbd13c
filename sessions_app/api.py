"""The API, for CI jobs, flag systems and scheduled queries.

GET  /api/v1/features/<flag_key>/rollout: "may stage X be enabled?"
POST /api/v1/features/<flag_key>/metrics/<metric>/measurements: feed a metric
     (a token made to write).

Both take `Authorization: Bearer <token>`. A token reaches only its user's
teams; anything else is 404, as for a page."""

from __future__ import annotations

import json
import uuid

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sessions_app.models import ApiToken, Feature, Metric, RolloutStage
from sessions_app.services import metrics, rollout
from sessions_app.services.tokens import token_for
from sessions_app.throttling import api_rate_limit

# A year of daily values, several times over; a bigger batch is split by the sender.
MAX_BODY_BYTES = 2 * 1024 * 1024


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


def _token(request: HttpRequest) -> ApiToken | JsonResponse:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return _error(401, "Send a personal API token: Authorization: Bearer <token>.")
    token = token_for(raw.strip())
    if token is None:
        return _error(401, "That token is unknown or revoked.")
    return token


def _feature(request: HttpRequest, user, flag_key: str) -> Feature | JsonResponse:
    features = Feature.objects.filter(flag_key=flag_key, team__memberships__user=user)
    if team := request.GET.get("team"):
        features = features.filter(team_id=team) if _is_uuid(team) else features.none()
    found = list(features.select_related("team")[:2])
    if not found:
        return _error(404, f"No feature with the flag key “{flag_key}” in your teams.")
    if len(found) > 1:
        return _error(400, "Several of your teams use this flag key: add ?team=<team id>.")
    return found[0]


@require_GET
@api_rate_limit
def feature_rollout(request: HttpRequest, flag_key: str) -> JsonResponse:
    token = _token(request)
    if isinstance(token, JsonResponse):
        return token
    feature = _feature(request, token.user, flag_key)
    if isinstance(feature, JsonResponse):
        return feature
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


@csrf_exempt  # a token, not a cookie, authenticates: there is no session to forge
@require_POST
@api_rate_limit
def metric_measurements(request: HttpRequest, flag_key: str, metric_key: str) -> JsonResponse:
    """Body: {"date": "YYYY-MM-DD", "value": 52.5}, or {"measurements": [that, …]}.
    All stored, or none (400 with each bad item's number and reason); a date
    already measured gets the new value."""
    token = _token(request)
    if isinstance(token, JsonResponse):
        return token
    feature = _feature(request, token.user, flag_key)
    if isinstance(feature, JsonResponse):
        return feature
    metric = Metric.objects.filter(feature=feature, key=metric_key).first()
    if metric is None:
        return _error(404, f"No metric “{metric_key}” on {feature.flag_key}.")
    if not token.can_write:
        return _error(403, "This token only reads: create one that can write measurements.")
    if len(request.body) > MAX_BODY_BYTES:
        return _error(413, f"At most {MAX_BODY_BYTES // 1024 // 1024} MB at once.")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as error:
        return _error(400, f"The body is not valid JSON: {error}.")
    try:
        stored = metrics.import_json(metric=metric, body=body)
    except metrics.InvalidRows as invalid:
        return JsonResponse(
            {
                "error": "Nothing was stored: some measurements are not valid.",
                "rows": [{"row": e.row, "reason": e.reason} for e in invalid.errors],
            },
            status=400,
        )
    return JsonResponse(
        {"metric": metric.key, "created": stored.created, "updated": stored.updated},
        status=201,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
