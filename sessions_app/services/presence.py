"""Who is in the live room now: one row per open connection, kept by heartbeats."""

from __future__ import annotations

from django.utils import timezone

from sessions_app.live_fragments import PRESENCE_TIMEOUT, panel_payload
from sessions_app.models import EnsembleSession, Presence
from sessions_app.services.timeline import broadcast


def _announce(session_id) -> None:
    session = EnsembleSession.objects.select_related("feature").get(pk=session_id)
    broadcast(session.pk, panel_payload(session, "live-room"))


def join(*, session: EnsembleSession, user, channel_name: str) -> None:
    Presence.objects.update_or_create(
        channel_name=channel_name,
        defaults={"session": session, "user": user, "last_seen": timezone.now()},
    )
    _announce(session.pk)


def heartbeat(*, session_id, channel_name: str) -> None:
    """Keep this connection present, and forget connections that went silent:
    a browser that vanished without closing its socket never says goodbye."""
    now = timezone.now()
    Presence.objects.filter(channel_name=channel_name).update(last_seen=now)
    gone, _ = Presence.objects.filter(
        session_id=session_id, last_seen__lt=now - PRESENCE_TIMEOUT
    ).delete()
    if gone:
        _announce(session_id)


def leave(*, session_id, channel_name: str) -> None:
    removed, _ = Presence.objects.filter(channel_name=channel_name).delete()
    if removed:
        _announce(session_id)
