"""After the session: the team's confidence, the decision, and its follow-ups."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from sessions_app.models.sessions import EnsembleSession, http_url_validator


class ConfidenceVote(models.Model):
    """A fist-of-five: how sure this person is that the feature is ready (1 to 5)."""

    session = models.ForeignKey(
        EnsembleSession, on_delete=models.CASCADE, related_name="confidence_votes"
    )
    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="confidence_votes"
    )
    score = models.PositiveSmallIntegerField(
        "confidence", validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "voter__username"]
        constraints = [
            models.UniqueConstraint(fields=["session", "voter"], name="one_vote_per_participant"),
            models.CheckConstraint(
                condition=models.Q(score__gte=1, score__lte=5), name="fist_of_five"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter}: {self.score}"


class Decision(models.Model):
    """One recorded decision. A revision is a new row with its reason: the
    latest is the decision, the earlier ones its history."""

    class Outcome(models.TextChoices):
        GO = "go", "Go"
        GO_WITH_CONDITIONS = "go_with_conditions", "Go with conditions"
        NO_GO = "no_go", "No-go"

    session = models.ForeignKey(EnsembleSession, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    rationale = models.TextField(max_length=4000)
    revision_reason = models.TextField(max_length=2000, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "decided_at", "id"]
        get_latest_by = ["decided_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} ({self.session})"


class FollowUp(models.Model):
    session = models.ForeignKey(
        EnsembleSession, on_delete=models.CASCADE, related_name="follow_ups"
    )
    text = models.CharField(max_length=500)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="follow_ups"
    )
    due = models.DateField(null=True, blank=True)
    tracker_url = models.URLField(
        "tracker link", max_length=500, blank=True, validators=[http_url_validator]
    )
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "done", "due", "id"]

    def __str__(self) -> str:
        return self.text
