"""The incoming alert webhook: monitoring tools POST here, with no session and
no CSRF token; the secret in the URL is what lets them in.

POST /hooks/alerts/<feature id>/<token> with a JSON body (generic, Sentry or
Datadog; see alert_payloads.py). Every refusal is a JSON error with a status
that says why, and stores nothing.
"""

from __future__ import annotations

import json
from hmac import compare_digest
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sessions_app.alert_payloads import UnknownShape, parse
from sessions_app.models import Feature
from sessions_app.services import alerts


def _error(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _feature(feature_id: UUID, token: str) -> Feature | None:
    feature = Feature.objects.filter(pk=feature_id).first()
    # Compared in constant time, so response timing tells nothing about the secret.
    if feature is None or not compare_digest(feature.alert_token.encode(), token.encode()):
        return None
    return feature


@csrf_exempt
@require_POST
def receive(request: HttpRequest, feature_id: UUID, token: str) -> JsonResponse:
    feature = _feature(feature_id, token)
    if feature is None:
        return _error(404, "No alert webhook at this address.")
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > settings.ALERT_MAX_BYTES:
        return _error(413, f"An alert may be at most {settings.ALERT_MAX_BYTES // 1024} KB.")
    body = request.body
    if len(body) > settings.ALERT_MAX_BYTES:
        return _error(413, f"An alert may be at most {settings.ALERT_MAX_BYTES // 1024} KB.")
    try:
        alerts.check_rate(feature)
    except alerts.TooManyAlerts as flood:
        return _error(
            429,
            f"Too many alerts for this feature: at most {settings.ALERTS_PER_MINUTE} a minute.",
            **{"Retry-After": str(flood.retry_after)},
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        return _error(400, f"The body is not valid JSON: {error}.")
    try:
        parsed = parse(payload, dict(request.headers))
    except UnknownShape as unknown:
        return _error(422, str(unknown))
    alert, sessions = alerts.receive(feature=feature, parsed=parsed)
    return JsonResponse(
        {
            "alert": alert.pk,
            "level": alert.level,
            "title": alert.title,
            "live_sessions": [str(session.pk) for session in sessions],
        },
        status=202,
    )
