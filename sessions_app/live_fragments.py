"""What the live room sends: each piece rendered once, from the same template
partials the page itself renders, so a note looks the same either way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.utils import timezone

from sessions_app.handover import next_handover
from sessions_app.models import EnsembleSession, Event, Goal, Note, Participant, Presence
from sessions_app.models.sessions import OtherTenantAlerts

User = get_user_model()
LIVE_PAGE = "sessions_app/live.html"
# A connection that has not sent a heartbeat for this long is gone.
PRESENCE_TIMEOUT = timedelta(seconds=45)


def note_payload(note: Note) -> dict[str, Any]:
    payload = {
        "type": "note",
        "revision": note.revision,
        "seq": note.seq,
        "client_id": note.client_id,
        "deleted": note.deleted_at is not None,
    }
    if not payload["deleted"]:
        payload["html"] = render_to_string(f"{LIVE_PAGE}#note", {"note": note})
    return payload


def event_payload(event: Event) -> dict[str, Any]:
    return {
        "type": "event",
        "revision": event.revision,
        "after_seq": event.after_seq,
        "html": render_to_string(f"{LIVE_PAGE}#event", {"event": event}),
    }


# The live room shows this many of the latest notes; older ones load on demand,
# so the page costs the same with 100 notes or 10,000.
LIVE_WINDOW = 100


@dataclass
class TimelinePage:
    """("note", note) and ("event", event) pairs: notes in seq order, each event
    right after the last note written before it. `earlier` is the seq to ask
    for older items with (`before`), or None when this page reaches the start."""

    items: list[tuple[str, Note | Event]]
    earlier: int | None


def timeline(session: EnsembleSession, *, before: int | None = None) -> TimelinePage:
    """The latest LIVE_WINDOW notes before `before` (or of all), with the events
    among them. A page holding notes from seq A up to `before` holds the events
    placed after notes A-1 up to `before`-1: every event is on exactly one page."""
    notes = Note.objects.for_session(session).visible().select_related("author", "goal")
    events = Event.objects.filter(session=session).select_related("alert")
    if before is not None:
        notes = notes.filter(seq__lt=before)
        events = events.filter(after_seq__lt=before - 1)
    window = list(notes.order_by("-seq")[: LIVE_WINDOW + 1])
    earlier = None
    if len(window) > LIVE_WINDOW:
        window = window[:LIVE_WINDOW]
        earlier = window[-1].seq
        events = events.filter(after_seq__gte=earlier - 1)
    items = [("note", note) for note in reversed(window)] + [("event", e) for e in events]
    items.sort(
        key=lambda pair: (
            (pair[1].seq, 0, 0) if pair[0] == "note" else (pair[1].after_seq, 1, pair[1].revision)
        )
    )
    return TimelinePage(items, earlier)


def present_user_ids(session: EnsembleSession) -> set[int]:
    fresh = timezone.now() - PRESENCE_TIMEOUT
    return set(
        Presence.objects.filter(session=session, last_seen__gte=fresh).values_list(
            "user_id", flat=True
        )
    )


def goals_context(session: EnsembleSession) -> dict[str, Any]:
    goals = list(
        Goal.objects.filter(session=session)
        .select_related("author")
        .order_by("-must_cover", "created_at", "id")
    )
    must = [goal for goal in goals if goal.must_cover]
    return {
        "session": session,
        "goals": goals,
        "statuses": Goal.Status.choices,
        "must_total": len(must),
        "must_covered": sum(1 for goal in must if goal.status == Goal.Status.COVERED),
    }


def rotation_order(session: EnsembleSession) -> list[Participant]:
    return list(session.participants.select_related("user").order_by("rotation_position", "id"))


def room_context(session: EnsembleSession) -> dict[str, Any]:
    participants = rotation_order(session)
    present = present_user_ids(session)
    without_role = present - {participant.user_id for participant in participants}
    return {
        "session": session,
        "participants": participants,
        "present": present,
        "present_count": len(present),
        # People in the room without a role, such as a facilitator who only facilitates.
        "also_here": User.objects.filter(pk__in=without_role).order_by("username"),
        "roles": Participant.Role.choices,
        "next_handover": next_handover(participants),
    }


def state_context(session: EnsembleSession) -> dict[str, Any]:
    return {"session": session}


# The alerts panel shows this many, newest first; the timeline keeps them all.
ALERTS_SHOWN = 50


def alerts_context(session: EnsembleSession) -> dict[str, Any]:
    """The log watcher's view: this session's alerts, newest first, each with
    the error note made from it, if any."""
    events = list(
        Event.objects.filter(session=session, kind=Event.Kind.ALERT)
        .select_related("alert")
        .order_by("-revision")[:ALERTS_SHOWN]
    )
    client_ids = {event.note_client_id: event for event in events}
    noted = Note.objects.for_session(session).filter(client_id__in=client_ids)
    for event in events:
        event.note_seq = None
    for client_id, seq in noted.values_list("client_id", "seq"):
        client_ids[client_id].note_seq = seq
    return {
        "session": session,
        "alert_events": events,
        "alert_count": Event.objects.filter(session=session, kind=Event.Kind.ALERT).count(),
        "other_tenant_choices": OtherTenantAlerts.choices,
    }


def alert_goal_context(session: EnsembleSession) -> dict[str, Any]:
    return {**goals_context(session), "select_id": "alert-goal"}


PANELS = {
    "live-state": ("state", state_context),
    "live-goals": ("goals", goals_context),
    "note-goal": ("goal-choice", goals_context),
    "live-room": ("room", room_context),
    "live-alerts": ("alerts", alerts_context),
    "alert-goal": ("goal-choice", alert_goal_context),
}


def panel_payload(session: EnsembleSession, panel_id: str) -> dict[str, Any]:
    """A panel as it is now. It carries the revision it was rendered at, so a
    client never replaces a panel with one rendered before it."""
    partial, context = PANELS[panel_id]
    html = render_to_string(f"{LIVE_PAGE}#{partial}", context(session))
    return {"type": "panel", "id": panel_id, "revision": session.revision, "html": html}
