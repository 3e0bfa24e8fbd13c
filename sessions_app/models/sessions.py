from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models

from sessions_app.models.features import Feature


class EnsembleSessionQuerySet(models.QuerySet):
    def for_member(self, user) -> EnsembleSessionQuerySet:
        return self.filter(feature__team__memberships__user=user)


class OtherTenantAlerts(models.TextChoices):
    MUTE = "mute", "Shown muted"
    HIDE = "hide", "Hidden"


class EnsembleSession(models.Model):
    """One ensemble production-testing session of a feature."""

    class Status(models.TextChoices):
        PLANNING = "planning", "Planning"
        LIVE = "live", "Live"
        REVIEW = "review", "In review"
        DECIDED = "decided", "Decided"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="sessions")
    title = models.CharField(max_length=200)
    charter = models.TextField(
        blank=True,
        max_length=4000,
        help_text="What the ensemble explores, and what it leaves out.",
    )
    internal_tenant = models.CharField(
        max_length=200,
        help_text="The tenant where the flag is on; nobody tests anywhere else.",
    )
    environment = models.CharField(max_length=100, default="production")
    scheduled_start = models.DateTimeField(null=True, blank=True)
    timebox_minutes = models.PositiveSmallIntegerField(
        "timebox (minutes)",
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(480)],
    )
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="facilitated_sessions",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNING)
    # Roles rotate every N minutes during the live session; null means no rotation.
    rotation_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The live timeline's counters, advanced under this row's lock in the same
    # transaction as each write: the last note's `seq` (1, 2, 3… no gaps), and
    # the revision of the last change of any kind (note, edit, event), which
    # clients hold to ask for what they missed.
    last_seq = models.PositiveIntegerField(default=0, editable=False)
    revision = models.PositiveBigIntegerField(default=0, editable=False)
    # The rotation timer: when the next handover is due, or, while paused, how
    # many seconds were left. Clients count down from these server values.
    rotation_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotation_paused_seconds = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # Confidence votes stay hidden until everyone voted or the facilitator reveals them.
    votes_revealed = models.BooleanField(default=False, editable=False)
    # Alerts about other tenants than ours: the team cares about what its own
    # exploration triggers, so the facilitator chooses to mute or hide them.
    other_tenant_alerts = models.CharField(
        max_length=4, choices=OtherTenantAlerts.choices, default=OtherTenantAlerts.MUTE
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EnsembleSessionQuerySet.as_manager()

    class Meta:
        ordering = ["scheduled_start", "created_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def team(self):
        return self.feature.team


http_url_validator = URLValidator(schemes=["http", "https"])


class DashboardLink(models.Model):
    """A dashboard the ensemble watches during the session (Datadog, Sentry, logs…)."""

    session = models.ForeignKey(
        EnsembleSession, on_delete=models.CASCADE, related_name="dashboard_links"
    )
    label = models.CharField(max_length=80)
    url = models.URLField("URL", max_length=500, validators=[http_url_validator])
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.label


class Participant(models.Model):
    class Role(models.TextChoices):
        DRIVER = "driver", "Driver"
        NAVIGATOR = "navigator", "Navigator"
        NOTE_TAKER = "note_taker", "Note-taker"
        OBSERVER = "observer", "Observer"
        LOG_WATCHER = "log_watcher", "Log watcher"

    # One person at a time holds each of these.
    SINGLE_HOLDER_ROLES = (Role.DRIVER, Role.NAVIGATOR)

    session = models.ForeignKey(
        EnsembleSession, on_delete=models.CASCADE, related_name="participants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="participations",
    )
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.OBSERVER)
    # The order in which people take their turn when roles rotate.
    rotation_position = models.PositiveSmallIntegerField(default=0)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rotation_position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="one_participation_per_user"),
            models.UniqueConstraint(
                fields=["session"],
                condition=models.Q(role="driver"),
                name="one_driver_per_session",
            ),
            models.UniqueConstraint(
                fields=["session"],
                condition=models.Q(role="navigator"),
                name="one_navigator_per_session",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"
