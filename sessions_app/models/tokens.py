from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


def token_digest(raw: str) -> str:
    """Tokens are stored as their SHA-256: a leaked database leaks no usable token.
    (They are long and random, so a fast hash is enough; no salt is needed.)"""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal API token: it reads what its user's teams may read, and where
    made to write, records their metrics' measurements."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80)
    digest = models.CharField(max_length=64, unique=True)
    # The first characters, to tell tokens apart on the account page.
    prefix = models.CharField(max_length=12)
    # Read-only unless made to write (measurements, for a scheduled job).
    can_write = models.BooleanField("can write measurements", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
