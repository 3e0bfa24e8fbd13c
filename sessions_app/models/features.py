from __future__ import annotations

import secrets
import uuid

from django.core.validators import RegexValidator
from django.db import models

from sessions_app.models.teams import Team

flag_key_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
    "Use letters, digits, dots, colons, dashes or underscores, starting with a letter or digit.",
)


def new_alert_token() -> str:
    return secrets.token_urlsafe(24)


class FeatureQuerySet(models.QuerySet):
    def for_member(self, user) -> FeatureQuerySet:
        return self.filter(team__memberships__user=user)


class Feature(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="features")
    name = models.CharField(max_length=120)
    flag_key = models.CharField(
        "flag key",
        max_length=100,
        validators=[flag_key_validator],
        help_text="The key of the feature flag, as your flag system spells it.",
    )
    description = models.TextField(blank=True, max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True)
    # The secret in the alert webhook's URL; regenerating it cuts off old senders.
    alert_token = models.CharField(max_length=64, default=new_alert_token, editable=False)

    objects = FeatureQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "flag_key"], name="flag_key_unique_per_team")
        ]

    def __str__(self) -> str:
        return self.name
