"""The live timeline: notes the ensemble writes, events the session records, and
who is in the room now."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sessions_app.models.goals import Goal
from sessions_app.models.sessions import EnsembleSession


class NoteQuerySet(models.QuerySet):
    def for_session(self, session: EnsembleSession) -> NoteQuerySet:
        return self.filter(session=session)

    def visible(self) -> NoteQuerySet:
        return self.filter(deleted_at=None)

    def changed_after(self, revision: int) -> NoteQuerySet:
        """Notes created, edited or deleted since a client's revision (deleted ones too:
        the client must drop them)."""
        return self.filter(revision__gt=revision)


class Note(models.Model):
    class Kind(models.TextChoices):
        OBSERVATION = "observation", "Observation"
        JOURNEY = "journey", "Journey"
        BUG = "bug", "Bug"
        FRICTION = "friction", "Friction"
        QUESTION = "question", "Question"
        IDEA = "idea", "Idea"
        ERROR = "error", "Error"

    TEXT_MAX_LENGTH = 4000

    session = models.ForeignKey(EnsembleSession, on_delete=models.CASCADE, related_name="notes")
    seq = models.PositiveIntegerField()
    revision = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField(max_length=TEXT_MAX_LENGTH)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="notes"
    )
    goal = models.ForeignKey(
        Goal, on_delete=models.SET_NULL, null=True, blank=True, related_name="notes"
    )
    # The client's idempotency key: a note resent after a lost acknowledgement
    # is recognised and stored once.
    client_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = NoteQuerySet.as_manager()

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="one_note_per_seq"),
            models.UniqueConstraint(fields=["session", "client_id"], name="one_note_per_client_id"),
        ]
        indexes = [models.Index(fields=["session", "revision"], name="note_session_revision")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.get_kind_display()}: {self.text[:40]}"


class Event(models.Model):
    """What the timeline shows beside notes: start and end, roles, goals,
    rotation, and alerts from production monitoring."""

    class Kind(models.TextChoices):
        STARTED = "started", "Session started"
        ENDED = "ended", "Session ended"
        ROLE_CHANGED = "role_changed", "Role changed"
        ROTATED = "rotated", "Roles rotated"
        ROTATION_PAUSED = "rotation_paused", "Rotation paused"
        ROTATION_RESUMED = "rotation_resumed", "Rotation resumed"
        ROTATION_CHANGED = "rotation_changed", "Rotation changed"
        GOAL_STATUS = "goal_status", "Goal status"
        ALERT = "alert", "Alert"

    session = models.ForeignKey(EnsembleSession, on_delete=models.CASCADE, related_name="events")
    revision = models.PositiveBigIntegerField()
    # Where it stands among the notes: after the note with this seq.
    after_seq = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The sentence the timeline shows, written when the event happens so it
    # keeps the names of that moment.
    summary = models.CharField(max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    alert = models.ForeignKey(
        "sessions_app.Alert", on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    # An alert about another tenant than the session's internal one, decided
    # when it arrived.
    other_tenant = models.BooleanField(default=False)

    class Meta:
        ordering = ["session", "revision"]
        constraints = [
            models.UniqueConstraint(fields=["session", "revision"], name="one_event_per_revision")
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def note_client_id(self) -> str:
        """The client id of the error note made from this alert: a second click,
        by anyone, finds the note the first one made."""
        return f"alert-{self.pk:06d}"


class Presence(models.Model):
    """One open live-room connection, kept alive by the client's heartbeats.

    A browser that vanishes without closing its socket stops sending them, and
    its row stops counting after PRESENCE_TIMEOUT, whether or not the server
    ever noticed the disconnect."""

    session = models.ForeignKey(EnsembleSession, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user} in {self.session}"
