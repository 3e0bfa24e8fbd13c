from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from sessions_app.models import (
    EnsembleSession,
    Feature,
    Goal,
    GoalVote,
    Invite,
    Membership,
    Participant,
    Team,
)

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save_password(self, create, extracted, **kwargs):
        if create:
            self.save(update_fields=["password"])


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER


class FeatureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feature

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Feature {n}")
    flag_key = factory.Sequence(lambda n: f"feature-{n}")


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EnsembleSession

    feature = factory.SubFactory(FeatureFactory)
    title = factory.Sequence(lambda n: f"Session {n}")
    internal_tenant = "internal"
    facilitator = factory.SubFactory(UserFactory)


class GoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Goal

    session = factory.SubFactory(SessionFactory)
    text = factory.Sequence(lambda n: f"Goal {n}")
    author = factory.SubFactory(UserFactory)
    perspective = Goal.Perspective.SUPPORT


class GoalVoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GoalVote

    goal = factory.SubFactory(GoalFactory)
    user = factory.SubFactory(UserFactory)


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    session = factory.SubFactory(SessionFactory)
    user = factory.SubFactory(UserFactory)
    role = Participant.Role.OBSERVER


class InviteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invite

    team = factory.SubFactory(TeamFactory)
    created_by = factory.SubFactory(UserFactory)
