"""Alerts from production monitoring: received on a feature's webhook, put into
the timeline of every live session of that feature, and turned into error notes
by whoever watches the logs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions_app.alert_payloads import ParsedAlert
from sessions_app.models import Alert, EnsembleSession, Event, Feature, Note
from sessions_app.models.features import new_alert_token
from sessions_app.models.sessions import OtherTenantAlerts
from sessions_app.permissions import require_facilitator, require_owner
from sessions_app.services.live import broadcast_panels
from sessions_app.services.notes import post_note
from sessions_app.services.timeline import lock, record_event


class TooManyAlerts(Exception):
    """The feature's webhook got more alerts in the last minute than it takes."""

    def __init__(self, retry_after: int):
        super().__init__("too many alerts")
        self.retry_after = retry_after


def check_rate(feature: Feature) -> None:
    """A flood from a misconfigured monitor must not bury the timeline. The
    count is the database's, so it holds across every server process."""
    limit = settings.ALERTS_PER_MINUTE
    since = timezone.now() - timedelta(minutes=1)
    recent = list(
        Alert.objects.filter(feature=feature, received_at__gte=since)
        .order_by("-received_at")
        .values_list("received_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        # Room for the next one when the oldest of these leaves the minute.
        wait = recent[-1] + timedelta(minutes=1) - timezone.now()
        raise TooManyAlerts(retry_after=max(1, int(wait.total_seconds()) + 1))


@transaction.atomic
def receive(*, feature: Feature, parsed: ParsedAlert) -> tuple[Alert, list[EnsembleSession]]:
    """Store the alert; every live session of the feature gets it in its
    timeline. Returns the alert and those sessions."""
    alert = Alert.objects.create(
        feature=feature,
        shape=parsed.shape,
        level=parsed.level,
        title=parsed.title,
        url=parsed.url,
        source=parsed.source,
        tenant=parsed.tenant,
    )
    live = list(
        EnsembleSession.objects.filter(feature=feature, status=EnsembleSession.Status.LIVE)
        .order_by("pk")  # always locked in the same order: no deadlock between two alerts
        .values_list("pk", flat=True)
    )
    delivered = []
    for pk in live:
        locked = EnsembleSession.objects.select_for_update().get(pk=pk)
        if locked.status != EnsembleSession.Status.LIVE:
            continue  # it ended while we waited for its lock
        record_event(
            locked,
            kind=Event.Kind.ALERT,
            summary=alert.title,
            actor=None,
            alert=alert,
            other_tenant=not alert.for_tenant(locked.internal_tenant),
        )
        broadcast_panels(locked, "live-alerts")
        delivered.append(locked)
    return alert, delivered


def regenerate_token(*, feature: Feature, by) -> str:
    """A new secret for the webhook URL; senders of the old one get 404 from now on."""
    require_owner(by, feature.team)
    feature.alert_token = new_alert_token()
    feature.save(update_fields=["alert_token"])
    return feature.alert_token


class UnknownChoice(ValueError):
    """Neither of the choices for other tenants' alerts."""


@transaction.atomic
def set_other_tenant_alerts(*, session: EnsembleSession, by, choice: str) -> None:
    require_facilitator(by, session)
    if choice not in OtherTenantAlerts.values:
        raise UnknownChoice("Choose to show other tenants' alerts muted, or to hide them.")
    locked = lock(session)
    locked.other_tenant_alerts = choice
    locked.save(update_fields=["other_tenant_alerts"])
    broadcast_panels(locked, "live-alerts")


def note_from_alert(*, session: EnsembleSession, event: Event, by, goal: str = "") -> Note:
    """One click: the alert becomes an error note, linked to a goal if one is chosen.
    It goes through the one path every note takes."""
    made = Note.objects.filter(session=session, client_id=event.note_client_id).first()
    if made is not None:
        # Someone clicked first: post_note would refuse their client id as another
        # author's, while a second click, by anyone, should find that note.
        return made
    alert = event.alert
    lines = [f"{alert.get_level_display()} alert: {alert.title}"]
    if alert.url:
        lines.append(alert.url)
    origin = ", ".join(filter(None, [alert.source, alert.tenant and f"tenant {alert.tenant}"]))
    if origin:
        lines.append(f"({origin})")
    note, _ = post_note(
        session=session,
        author=by,
        data={
            "kind": Note.Kind.ERROR,
            "text": "\n".join(lines),
            "goal": goal or "",
            "client_id": event.note_client_id,
        },
    )
    broadcast_panels(session, "live-alerts")
    return note
