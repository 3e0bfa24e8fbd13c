from __future__ import annotations

from django.db import models

from sessions_app.models.features import Feature

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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["feature", "position"]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"
