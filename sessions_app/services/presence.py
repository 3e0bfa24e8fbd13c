"""Who is in the live room now: one row per open connection, kept by heartbeats.

Each function returns the room panel to announce when presence changed, or
None; the consumer sends it from its own event loop. (A disconnect can run
while daphne shuts down, when a thread must not wait on the loop.)"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from sessions_app.live_fragments import PRESENCE_TIMEOUT, panel_payload
from sessions_app.models import EnsembleSession, Presence

Announcement = dict[str, Any] | None


def _room(session_id) -> dict[str, Any]:
    session = EnsembleSession.objects.select_related("feature").get(pk=session_id)
    return panel_payload(session, "live-room")


def join(*, session: EnsembleSession, user, channel_name: str) -> Announcement:
    Presence.objects.update_or_create(
        channel_name=channel_name,
        defaults={"session": session, "user": user, "last_seen": timezone.now()},
    )
    return _room(session.pk)


def heartbeat(*, session_id, user, channel_name: str) -> Announcement:
    """Keep this connection present, and forget connections that went silent:
    a browser that vanished without closing its socket never says goodbye.
    Every open room sends one every 15 s, so the usual case is two short
    statements and no transaction."""
    now = timezone.now()
    # The row may be gone: another connection's heartbeat prunes it when this
    # one's were late (a laptop asleep, a throttled background tab) although
    # its socket is still open. Then this heartbeat brings it back.
    back = not Presence.objects.filter(channel_name=channel_name).update(last_seen=now)
    if back:
        Presence.objects.update_or_create(
            channel_name=channel_name,
            defaults={"session_id": session_id, "user": user, "last_seen": now},
        )
    stale = Presence.objects.filter(session_id=session_id, last_seen__lt=now - PRESENCE_TIMEOUT)
    gone = stale.exists() and stale.delete()[0]
    return _room(session_id) if gone or back else None


def leave(*, session_id, channel_name: str) -> Announcement:
    removed, _ = Presence.objects.filter(channel_name=channel_name).delete()
    return _room(session_id) if removed else None
