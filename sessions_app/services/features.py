from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from sessions_app.forms import FeatureForm
from sessions_app.models import Feature, RolloutStage, Team
from sessions_app.models.rollout import DEFAULT_PLAN
from sessions_app.services.validation import InvalidInput, validated


def _flag_key_taken(form: FeatureForm) -> InvalidInput:
    # The form checks the key, but two people saving at once can race past it;
    # the unique constraint has the last word, and the answer stays the same.
    form.add_error("flag_key", "Your team already has a feature with this flag key.")
    return InvalidInput(form)


def create_feature(*, team: Team, data: Mapping[str, Any]) -> Feature:
    """A new feature starts with the default rollout plan, every stage pending."""
    form = validated(FeatureForm(data, team=team))
    try:
        with transaction.atomic():
            feature = form.save(commit=False)
            feature.team = team
            feature.save()
            RolloutStage.objects.bulk_create(
                RolloutStage(feature=feature, position=position, name=name)
                for position, name in enumerate(DEFAULT_PLAN, start=1)
            )
    except IntegrityError as error:
        raise _flag_key_taken(form) from error
    return feature


def update_feature(*, feature: Feature, data: Mapping[str, Any]) -> Feature:
    form = validated(FeatureForm(data, instance=feature, team=feature.team))
    try:
        with transaction.atomic():
            return form.save()
    except IntegrityError as error:
        raise _flag_key_taken(form) from error
