"""Personal API tokens: created and revoked by their owner, stored only as digests."""

from __future__ import annotations

import secrets

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from sessions_app.models import ApiToken
from sessions_app.models.tokens import token_digest

PREFIX = "ens_"


def create_token(*, user, name: str, can_write: bool = False) -> tuple[ApiToken, str]:
    """A new token; the raw value is returned once and never stored."""
    raw = PREFIX + secrets.token_urlsafe(32)
    # A label, not free text: NUL characters (which no database column takes) go.
    name = (name or "").replace("\x00", "").strip()[:80] or "API token"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        digest=token_digest(raw),
        prefix=raw[: len(PREFIX) + 6],
        can_write=can_write,
    )
    return token, raw


def revoke_token(*, token: ApiToken, by) -> None:
    if token.user_id != by.pk:
        raise PermissionDenied("Only the token's owner can revoke it.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def token_for(raw: str) -> ApiToken | None:
    """The live token a raw value stands for, or None when it is unknown,
    revoked, or its user deactivated."""
    token = (
        ApiToken.objects.filter(digest=token_digest(raw), revoked_at=None)
        .select_related("user")
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def user_for(raw: str):
    """The user a raw token stands for, or None when it is unknown or revoked."""
    token = token_for(raw)
    return token.user if token else None
