"""The dashboard at /: the team's features and its sessions by status."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from sessions_app.models import EnsembleSession
from tests.factories import FeatureFactory, SessionFactory


def test_dashboard_lists_features_and_sessions_by_status(feature, facilitator, teammate_client):
    for title, status in [
        ("Upcoming one", "planning"),
        ("Live one", "live"),
        ("Reviewing one", "review"),
        ("Decided one", "decided"),
    ]:
        SessionFactory(feature=feature, title=title, status=status, facilitator=facilitator)
    content = teammate_client.get(reverse("dashboard")).content.decode()
    assert "Bulk invoice export" in content
    positions = [
        content.index(text)
        for text in [
            "Live now",
            "Live one",
            "Upcoming",
            "Upcoming one",
            "In review",
            "Reviewing one",
            "Decided",
            "Decided one",
        ]
    ]
    assert positions == sorted(positions)
    session = EnsembleSession.objects.get(title="Upcoming one")
    link = (
        f'<a href="{reverse("session_plan", kwargs={"session_id": session.pk})}">Upcoming one</a>'
    )
    assert link in content


def test_dashboard_shows_nothing_of_other_teams(session, outsider_client):
    content = outsider_client.get(reverse("dashboard")).content.decode()
    assert "Bulk export walkthrough" not in content
    assert "Bulk invoice export" not in content
    assert "Globex" in content


def test_cancelled_sessions_are_left_off(feature, facilitator, teammate_client):
    SessionFactory(feature=feature, title="Called off", status="cancelled", facilitator=facilitator)
    assert "Called off" not in teammate_client.get(reverse("dashboard")).content.decode()


def test_anonymous_user_is_sent_to_login(db):
    response = Client().get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_dashboard_queries_stay_constant_as_rows_grow(
    team, facilitator, teammate_client, django_assert_max_num_queries
):
    def grow(n: int) -> None:
        for _ in range(n):
            feature = FeatureFactory(team=team)
            SessionFactory(feature=feature, facilitator=facilitator)

    grow(2)
    with django_assert_max_num_queries(15) as small:
        teammate_client.get(reverse("dashboard"))
    grow(25)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = teammate_client.get(reverse("dashboard"))
    assert response.content.decode().count('class="card"') == 54
