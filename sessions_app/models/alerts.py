"""Alerts from production monitoring, posted to a feature's alert webhook."""

from __future__ import annotations

from django.db import models

from sessions_app.models.features import Feature
from sessions_app.models.sessions import http_url_validator


class Alert(models.Model):
    """One alert as received. While a session of the feature is live it also
    becomes an event in that session's timeline; otherwise it waits on the
    feature page."""

    class Level(models.TextChoices):
        CRITICAL = "critical", "Critical"
        ERROR = "error", "Error"
        WARNING = "warning", "Warning"
        INFO = "info", "Info"

    class Shape(models.TextChoices):
        GENERIC = "generic", "Generic JSON"
        SENTRY = "sentry", "Sentry"
        DATADOG = "datadog", "Datadog"

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="alerts")
    shape = models.CharField(max_length=10, choices=Shape.choices)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.ERROR)
    title = models.CharField(max_length=300)
    url = models.URLField(max_length=2000, blank=True, validators=[http_url_validator])
    source = models.CharField(max_length=100, blank=True)
    tenant = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["feature", "-received_at", "-id"]
        indexes = [models.Index(fields=["feature", "received_at"], name="alert_feature_received")]

    def __str__(self) -> str:
        return f"[{self.level}] {self.title}"

    def for_tenant(self, tenant: str) -> bool:
        """Whether this alert concerns that tenant. An alert naming no tenant
        may concern anyone, so it counts as the session's own."""
        return not self.tenant or self.tenant.strip().casefold() == tenant.strip().casefold()
