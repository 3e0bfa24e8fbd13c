"""What the review page and the exports report of a session: one reading of the
database, shared by both, so the page and the files never disagree."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import batched

from django.db.models import Count

from sessions_app.models import (
    ConfidenceVote,
    Decision,
    EnsembleSession,
    Event,
    FollowUp,
    Goal,
    Note,
    Participant,
)
from sessions_app.services.outcome import voters, votes_visible

# Bugs and friction first: what must be fixed before customers see the feature.
KIND_ORDER = ["bug", "friction", "error", "question", "journey", "observation", "idea"]
# Goal coverage, must-cover goals first; an open goal nobody touched says so.
COVERAGE_ORDER = ["covered", "problem", "skipped", "open"]


@dataclass
class GoalCoverage:
    goal: Goal
    note_count: int

    @property
    def coverage(self) -> str:
        if self.goal.status == Goal.Status.OPEN:
            return "never touched" if not self.note_count else "open"
        return self.goal.get_status_display().lower()


# The review page shows this many notes of each kind and this many timeline
# entries, so it stays quick for a session of thousands of notes; the exports
# hold everything.
KIND_LIMIT = 25
TIMELINE_LIMIT = 100


@dataclass
class KindGroup:
    kind: str
    label: str
    notes: list[Note]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.notes)


def clock(delta: timedelta | None) -> str:
    """Elapsed time as H:MM:SS, from the session's start."""
    if delta is None:
        return ""
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class TimelineEntry:
    at: datetime
    elapsed: timedelta | None
    note: Note | None = None
    event: Event | None = None

    @property
    def clock(self) -> str:
        return clock(self.elapsed)


@dataclass
class Report:
    session: EnsembleSession
    goals: list[GoalCoverage]
    timeline: list[TimelineEntry]
    note_count: int
    # For the page: each kind's first notes and how many there are in all,
    # and how many timeline entries are past the ones shown.
    kinds: list[KindGroup]
    timeline_hidden: int
    participants: list[Participant]
    role_changes: list[TimelineEntry]
    decision: Decision | None
    decision_history: list[Decision]
    follow_ups: list[FollowUp]
    alerts: list[Event]  # the alert events, in the order they arrived
    votes: list[ConfidenceVote]
    votes_visible: bool
    voters_expected: int
    distribution: list[tuple[int, int]] = field(default_factory=list)

    @property
    def average_confidence(self) -> float | None:
        if not self.votes:
            return None
        return round(sum(vote.score for vote in self.votes) / len(self.votes), 1)


# The exports read and write this many notes at a time.
NOTE_BATCH = 500


def note_batches(
    session: EnsembleSession, kinds: tuple[str, ...] | None = None
) -> Iterator[list[Note]]:
    """Every visible note of the session (or of these kinds), in seq order, a
    batch at a time, from one query read as it goes (a server-side cursor on
    PostgreSQL): the first bytes of an export leave at once, and the process
    never holds the whole session."""
    notes = Note.objects.for_session(session).visible().select_related("author", "goal")
    if kinds is not None:
        notes = notes.filter(kind__in=kinds)
    for batch in batched(notes.order_by("seq").iterator(chunk_size=NOTE_BATCH), NOTE_BATCH):
        yield list(batch)


def elapsed(session: EnsembleSession, at: datetime) -> timedelta | None:
    return at - session.started_at if session.started_at else None


def build(session: EnsembleSession) -> Report:
    """The review page's reading, and the exports' but for their notes: the
    first notes of each kind and the first timeline entries, so its queries and
    its time do not grow with the session. The exports read every note in
    batches (note_batches) as they stream them."""
    visible = Note.objects.for_session(session).visible().select_related("author", "goal")
    note_count = visible.count()
    totals = dict(visible.order_by().values_list("kind").annotate(n=Count("pk")))
    events = list(
        Event.objects.filter(session=session).select_related("actor", "alert").order_by("revision")
    )
    kinds = [
        KindGroup(
            kind,
            Note.Kind(kind).label,
            list(visible.filter(kind=kind).order_by("seq")[:KIND_LIMIT]),
            totals[kind],
        )
        for kind in KIND_ORDER
        if kind in totals
    ]
    shown = list(visible.order_by("seq")[:TIMELINE_LIMIT])
    # The events up to the last note shown; past it, the timeline is cut.
    last = shown[-1].seq if note_count > len(shown) else None
    timeline_events = [e for e in events if last is None or e.after_seq < last]
    counts = dict(visible.exclude(goal=None).order_by().values_list("goal").annotate(n=Count("pk")))
    goals = sorted(
        (
            GoalCoverage(goal, counts.get(goal.pk, 0))
            for goal in session.goals.annotate(vote_count=Count("votes"))
        ),
        key=lambda item: (
            not item.goal.must_cover,
            COVERAGE_ORDER.index(item.goal.status),
            item.goal.pk,
        ),
    )
    timeline = sorted(
        [TimelineEntry(n.created_at, elapsed(session, n.created_at), note=n) for n in shown]
        + [
            TimelineEntry(e.created_at, elapsed(session, e.created_at), event=e)
            for e in timeline_events
        ],
        key=lambda entry: entry.at,
    )
    decisions = list(session.decisions.select_related("decided_by").order_by("decided_at", "id"))
    votes = list(session.confidence_votes.select_related("voter"))
    visible = votes_visible(session)
    return Report(
        session=session,
        goals=goals,
        timeline=timeline,
        note_count=note_count,
        kinds=kinds,
        timeline_hidden=note_count + len(events) - len(timeline),
        participants=list(session.participants.select_related("user")),
        role_changes=[
            entry
            for entry in (
                TimelineEntry(e.created_at, elapsed(session, e.created_at), event=e) for e in events
            )
            if entry.event.kind in (Event.Kind.ROLE_CHANGED, Event.Kind.ROTATED)
        ],
        decision=decisions[-1] if decisions else None,
        decision_history=decisions[:-1],
        follow_ups=list(session.follow_ups.select_related("owner")),
        alerts=[event for event in events if event.alert_id],
        votes=votes,
        votes_visible=visible,
        voters_expected=len(voters(session)),
        distribution=[(n, sum(1 for v in votes if v.score == n)) for n in range(1, 6)]
        if visible
        else [],
    )
