from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from sessions_app.forms import TeamForm
from sessions_app.models import Invite, Membership, Team
from sessions_app.permissions import require_owner
from sessions_app.services.validation import validated


@transaction.atomic
def create_team(*, owner, data: Mapping[str, Any]) -> Team:
    """A team is created by its first member, who becomes its owner."""
    team = validated(TeamForm(data)).save()
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def create_invite(*, team: Team, by) -> Invite:
    require_owner(by, team)
    return Invite.objects.create(team=team, created_by=by)


def revoke_invite(*, invite: Invite, by) -> None:
    require_owner(by, invite.team)
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])


def accept_invite(*, invite: Invite, user) -> Membership:
    """Join the invite's team; joining twice keeps the one membership."""
    if not invite.is_active:
        raise Invite.DoesNotExist("This invite link has been revoked.")
    try:
        with transaction.atomic():
            membership, _ = Membership.objects.get_or_create(team=invite.team, user=user)
    except IntegrityError:  # a double click raced the first join
        membership = Membership.objects.get(team=invite.team, user=user)
    return membership
