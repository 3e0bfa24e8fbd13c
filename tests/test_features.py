"""Features: each with a flag key unique per team and a default rollout plan."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from sessions_app.models import Feature
from tests.factories import FeatureFactory


def test_member_adds_a_feature_with_the_default_rollout_plan(team, teammate_client):
    response = teammate_client.post(
        reverse("feature_create"),
        {
            "name": "Bulk invoice export",
            "flag_key": "bulk-invoice-export",
            "description": "",
        },
    )
    feature = Feature.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("feature_detail", kwargs={"feature_id": feature.pk})
    assert feature.team == team
    assert list(feature.rollout_stages.values_list("position", "name", "status")) == [
        (1, "Internal tenant", "pending"),
        (2, "Pilot customers", "pending"),
        (3, "25% of tenants", "pending"),
        (4, "All tenants", "pending"),
    ]


def test_duplicate_flag_key_in_the_team_is_refused(feature, teammate_client):
    response = teammate_client.post(
        reverse("feature_create"), {"name": "Again", "flag_key": feature.flag_key}
    )
    assert response.status_code == 400
    assert "Your team already has a feature with the flag key" in response.content.decode()
    assert Feature.objects.count() == 1


def test_the_same_flag_key_is_fine_in_another_team(feature, outsider_client):
    response = outsider_client.post(
        reverse("feature_create"), {"name": "Theirs", "flag_key": feature.flag_key}
    )
    assert response.status_code == 302
    assert Feature.objects.filter(flag_key=feature.flag_key).count() == 2


def test_flag_key_with_spaces_is_refused(team, teammate_client):
    response = teammate_client.post(
        reverse("feature_create"), {"name": "X", "flag_key": "bulk export"}
    )
    assert response.status_code == 400
    assert "Use letters, digits" in response.content.decode()
    assert not Feature.objects.exists()


def test_member_edits_a_feature(feature, teammate_client):
    response = teammate_client.post(
        reverse("feature_edit", kwargs={"feature_id": feature.pk}),
        {
            "name": "Bulk export",
            "flag_key": feature.flag_key,
            "description": "Now with ZIP",
        },
    )
    assert response.status_code == 302
    feature.refresh_from_db()
    assert (feature.name, feature.description) == ("Bulk export", "Now with ZIP")


def test_editing_to_a_taken_flag_key_is_refused(feature, teammate_client):
    other = FeatureFactory(team=feature.team, flag_key="other-flag")
    response = teammate_client.post(
        reverse("feature_edit", kwargs={"feature_id": other.pk}),
        {"name": other.name, "flag_key": feature.flag_key},
    )
    assert response.status_code == 400
    other.refresh_from_db()
    assert other.flag_key == "other-flag"


def test_feature_page_lists_sessions_rollout_and_metrics(session, teammate_client):
    session.feature.metrics.create(
        name="Exports in 7 days", key="exports-7d", unit="%", baseline=40, target=70
    )
    response = teammate_client.get(
        reverse("feature_detail", kwargs={"feature_id": session.feature.pk})
    )
    content = response.content.decode()
    assert session.title in content
    assert "Exports in 7 days" in content
    assert "No measurements yet. The goal is from 40% to 70%." in content


def test_outsider_gets_404_on_a_feature(feature, outsider_client):
    kwargs = {"feature_id": feature.pk}
    assert outsider_client.get(reverse("feature_detail", kwargs=kwargs)).status_code == 404
    response = outsider_client.post(
        reverse("feature_edit", kwargs=kwargs), {"name": "Mine now", "flag_key": "x"}
    )
    assert response.status_code == 404
    feature.refresh_from_db()
    assert feature.name == "Bulk invoice export"


def test_anonymous_user_is_sent_to_login(feature):
    response = Client().get(reverse("feature_detail", kwargs={"feature_id": feature.pk}))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
