"""Outbound webhooks: events are queued in the transaction that causes them and
sent by a worker outside any request (`manage.py deliver_webhooks`), so a slow
or broken receiver never slows a page. Each body is signed:

    X-Ensemble-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">

with the webhook's secret; a receiver recomputes it and refuses old timestamps,
which stops replays."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.db import transaction
from django.utils import timezone

from sessions_app.models import Team, Webhook, WebhookDelivery
from sessions_app.permissions import require_owner
from sessions_app.services.validation import validated

MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 5
Status = WebhookDelivery.Status


class WebhookForm(forms.ModelForm):
    class Meta:
        model = Webhook
        fields = ["url"]


def add_webhook(*, team: Team, by, data: Mapping[str, Any]) -> Webhook:
    require_owner(by, team)
    webhook = validated(WebhookForm(data, label_suffix="")).save(commit=False)
    webhook.team = team
    webhook.created_by = by
    webhook.save()
    return webhook


def remove_webhook(*, webhook: Webhook, by) -> None:
    require_owner(by, webhook.team)
    webhook.delete()


def queue(*, team: Team, event: str, payload: dict[str, Any]) -> None:
    """Queue an event for every active webhook of the team (inside the caller's
    transaction: no event for a change that rolls back)."""
    body = json.dumps({"event": event, "sent_at": timezone.now().isoformat(), **payload})
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(webhook=webhook, event=event, body=body, next_attempt_at=now)
        for webhook in team.webhooks.filter(active=True)
    )


def signature(secret: str, body: str, at: int) -> str:
    digest = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min… up to an hour between tries."""
    return timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    body = delivery.body.encode()
    request = urllib.request.Request(
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Ensemble-Webhooks/1",
            "X-Ensemble-Event": delivery.event,
            "X-Ensemble-Delivery": str(delivery.pk),
            "X-Ensemble-Signature": signature(
                delivery.webhook.secret, delivery.body, int(time.time())
            ),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        return None, str(error)[:500]


def deliver_due(*, now: datetime | None = None, limit: int = 50) -> int:
    """Send the deliveries that are due; returns how many were tried. Rows are
    claimed with SKIP LOCKED, so several workers never send one twice."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("webhook")
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:limit]
        )
        # Claimed: pushed into the future while they are being sent.
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in due]).update(
            next_attempt_at=now + timedelta(seconds=TIMEOUT_SECONDS * 4)
        )
    for delivery in due:
        code, error = _post(delivery)
        delivery.attempts += 1
        delivery.last_status_code = code
        delivery.last_error = error
        if code is not None and 200 <= code < 300:
            delivery.status = Status.DELIVERED
            delivery.delivered_at = timezone.now()
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = Status.FAILED
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
        delivery.save()
    return len(due)
