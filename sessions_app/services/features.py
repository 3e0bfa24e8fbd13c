from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from sessions_app.forms import FeatureForm
from sessions_app.models import Feature, RolloutStage, Team
from sessions_app.models.rollout import DEFAULT_PLAN
from sessions_app.services.validation import validated


@transaction.atomic
def create_feature(*, team: Team, data: Mapping[str, Any]) -> Feature:
    """A new feature starts with the default rollout plan, every stage pending."""
    feature = validated(FeatureForm(data, team=team)).save(commit=False)
    feature.team = team
    feature.save()
    RolloutStage.objects.bulk_create(
        RolloutStage(feature=feature, position=position, name=name)
        for position, name in enumerate(DEFAULT_PLAN, start=1)
    )
    return feature


def update_feature(*, feature: Feature, data: Mapping[str, Any]) -> Feature:
    return validated(FeatureForm(data, instance=feature, team=feature.team)).save()
