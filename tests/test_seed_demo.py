"""`manage.py seed_demo`: the demo data the contract promises, idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from sessions_app.models import (
    EnsembleSession,
    Feature,
    Goal,
    GoalVote,
    Membership,
    Metric,
    Participant,
    RolloutStage,
    Team,
)

pytestmark = pytest.mark.django_db


def counts() -> dict:
    models = [
        Team,
        Membership,
        Feature,
        RolloutStage,
        Metric,
        EnsembleSession,
        Goal,
        GoalVote,
        Participant,
    ]
    return {model.__name__: model.objects.count() for model in models}


def test_seed_demo_creates_the_contract_data(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())

    acme = Team.objects.get(name="Acme")
    assert set(acme.memberships.values_list("user__username", "role")) == {
        ("dana", "owner"),
        ("sam", "member"),
        ("erin", "member"),
        ("pat", "member"),
        ("kim", "member"),
    }
    globex = Team.objects.get(name="Globex")
    assert list(globex.memberships.values_list("user__username", flat=True)) == ["olga"]
    for username in ["dana", "sam", "erin", "pat", "kim", "olga"]:
        assert authenticate(username=username, password="ensemble-demo") is not None

    feature = Feature.objects.get(team=acme, flag_key="bulk-invoice-export")
    assert feature.name == "Bulk invoice export"
    assert feature.rollout_stages.count() == 4
    metric = feature.metrics.get()
    assert (metric.baseline, metric.target) == (40, 70)

    session = EnsembleSession.objects.get(feature=feature, title="Bulk export walkthrough")
    assert session.status == "planning"
    assert session.facilitator.username == "dana"
    assert len(set(session.goals.values_list("perspective", flat=True))) >= 3


def test_seed_demo_twice_changes_nothing(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    first = counts()
    call_command("seed_demo", stdout=StringIO())
    assert counts() == first


def test_seed_demo_prints_the_logins(settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "dana" in out and "olga" in out and "ensemble-demo" in out


def test_seed_demo_refuses_with_debug_off_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        call_command("seed_demo")
    assert not Team.objects.exists()
    call_command("seed_demo", "--force", stdout=StringIO())
    assert Team.objects.filter(name="Acme").exists()


def test_seed_demo_keeps_what_people_changed_since(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    session = EnsembleSession.objects.get(title="Bulk export walkthrough")
    # The facilitator hands driving to kim and removes erin.
    session.participants.filter(user__username="erin").delete()
    session.participants.filter(user__username="kim").update(role="driver")
    session.goals.filter(perspective="design").delete()

    call_command("seed_demo", stdout=StringIO())

    roles = dict(session.participants.values_list("user__username", "role"))
    assert roles == {"kim": "driver", "pat": "navigator", "sam": "observer"}
    assert not session.goals.filter(perspective="design").exists()


def test_seed_demo_leaves_a_real_team_of_the_same_name_alone(settings):
    settings.DEBUG = True
    boss = get_user_model().objects.create_user("boss", password="real-password-1")
    real = Team.objects.create(name="Acme")
    Membership.objects.create(team=real, user=boss, role="owner")

    call_command("seed_demo", stdout=StringIO())

    assert list(real.memberships.values_list("user__username", flat=True)) == ["boss"]
    assert Team.objects.filter(name="Acme").count() == 2


def test_seed_demo_makes_the_demo_password_true_again(settings):
    settings.DEBUG = True
    get_user_model().objects.create_user("sam", password="something-else-entirely")
    call_command("seed_demo", stdout=StringIO())
    assert authenticate(username="sam", password="ensemble-demo") is not None
