from __future__ import annotations

from django.conf import settings
from django.db import models

from sessions_app.models.features import Feature
from sessions_app.models.outcome import Decision

DEFAULT_PLAN = ["Internal tenant", "Pilot customers", "25% of tenants", "All tenants"]


class RolloutStage(models.Model):
    """One ordered step of a feature's rollout plan, gated by a session decision."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        ENABLED = "enabled", "Enabled"
        PAUSED = "paused", "Paused"

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="rollout_stages")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The decision that let this stage be approved (none for the internal tenant,
    # which is where sessions test, or when an owner overrode the gate).
    gate_decision = models.ForeignKey(
        Decision, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["feature", "position"]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class RolloutChange(models.Model):
    """The audit trail of a rollout plan: who changed what, when, and why."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="rollout_changes")
    stage_name = models.CharField(max_length=120, blank=True)
    action = models.CharField(max_length=40)
    detail = models.CharField(max_length=500, blank=True)
    reason = models.TextField(max_length=2000, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["feature", "-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.stage_name}"
