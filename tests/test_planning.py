"""Planning a session: its details, dashboard links and facilitator."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from sessions_app.models import DashboardLink, EnsembleSession
from tests.factories import FeatureFactory, SessionFactory, UserFactory


def plan_data(feature, facilitator, **overrides) -> dict:
    data = {
        "feature": feature.pk,
        "title": "Bulk export walkthrough",
        "charter": "Explore exports as support would.",
        "internal_tenant": "acme-internal",
        "environment": "production",
        "scheduled_start": "2026-12-01T14:00",
        "timebox_minutes": "60",
        "facilitator": facilitator.pk,
        "links-TOTAL_FORMS": "3",
        "links-INITIAL_FORMS": "0",
        "links-MIN_NUM_FORMS": "0",
        "links-MAX_NUM_FORMS": "12",
        "links-0-label": "Datadog",
        "links-0-url": "https://app.datadoghq.com/dashboard/abc",
        "links-1-label": "Sentry",
        "links-1-url": "https://sentry.io/organizations/acme/issues/",
        "links-2-label": "",
        "links-2-url": "",
    }
    data.update(overrides)
    return data


def test_member_plans_a_session_with_dashboard_links(feature, facilitator, teammate_client):
    response = teammate_client.post(reverse("session_create"), plan_data(feature, facilitator))
    session = EnsembleSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("session_plan", kwargs={"session_id": session.pk})
    assert session.status == EnsembleSession.Status.PLANNING
    assert session.facilitator == facilitator
    assert session.timebox_minutes == 60
    assert session.scheduled_start.isoformat() == "2026-12-01T14:00:00+00:00"
    assert list(session.dashboard_links.values_list("label", "url")) == [
        ("Datadog", "https://app.datadoghq.com/dashboard/abc"),
        ("Sentry", "https://sentry.io/organizations/acme/issues/"),
    ]


def test_plan_page_shows_the_details(session, teammate_client):
    session.dashboard_links.create(label="Logs", url="https://logs.example.com/x")
    html = teammate_client.get(reverse("session_plan", kwargs={"session_id": session.pk}))
    content = html.content.decode()
    assert "Bulk export walkthrough" in content
    assert "bulk-invoice-export" in content
    assert session.internal_tenant in content
    assert 'href="https://logs.example.com/x"' in content


def test_new_session_form_preselects_the_feature_and_me(feature, teammate, teammate_client):
    response = teammate_client.get(reverse("session_create"), {"feature": feature.pk})
    content = response.content.decode()
    assert f'<option value="{feature.pk}" selected>' in content
    assert f'<option value="{teammate.pk}" selected>' in content


def test_javascript_link_is_refused(feature, facilitator, teammate_client):
    data = plan_data(feature, facilitator, **{"links-0-url": "javascript:alert(1)"})
    response = teammate_client.post(reverse("session_create"), data)
    assert response.status_code == 400
    assert "Enter a valid URL." in response.content.decode()
    assert not EnsembleSession.objects.exists()
    assert not DashboardLink.objects.exists()


def test_link_without_label_is_refused(feature, facilitator, teammate_client):
    data = plan_data(feature, facilitator, **{"links-2-url": "https://example.com/"})
    response = teammate_client.post(reverse("session_create"), data)
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not EnsembleSession.objects.exists()


def test_missing_title_and_tenant_are_reported_together(feature, facilitator, teammate_client):
    data = plan_data(feature, facilitator, title="", internal_tenant="")
    response = teammate_client.post(reverse("session_create"), data)
    assert response.status_code == 400
    assert response.content.decode().count("This field is required.") == 2
    assert not EnsembleSession.objects.exists()


def test_timebox_must_be_sensible(feature, facilitator, teammate_client):
    response = teammate_client.post(
        reverse("session_create"), plan_data(feature, facilitator, timebox_minutes="0")
    )
    assert response.status_code == 400
    assert "greater than or equal to 5" in response.content.decode()
    assert not EnsembleSession.objects.exists()


def test_another_teams_feature_cannot_be_chosen(facilitator, teammate_client):
    foreign = FeatureFactory()
    response = teammate_client.post(reverse("session_create"), plan_data(foreign, facilitator))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not EnsembleSession.objects.exists()


def test_facilitator_must_be_a_team_member(feature, outsider, teammate_client):
    response = teammate_client.post(reverse("session_create"), plan_data(feature, outsider))
    assert response.status_code == 400
    assert not EnsembleSession.objects.exists()


def test_facilitator_edits_the_plan_and_removes_a_link(session, facilitator, facilitator_client):
    link = session.dashboard_links.create(label="Old", url="https://old.example.com/")
    data = plan_data(
        session.feature,
        facilitator,
        title="Renamed",
        **{
            "links-INITIAL_FORMS": "1",
            "links-TOTAL_FORMS": "4",
            "links-0-id": link.pk,
            "links-0-label": "Old",
            "links-0-url": "https://old.example.com/",
            "links-0-DELETE": "on",
            "links-3-label": "",
            "links-3-url": "",
        },
    )
    response = facilitator_client.post(
        reverse("session_edit", kwargs={"session_id": session.pk}), data
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.title == "Renamed"
    assert sorted(session.dashboard_links.values_list("label", flat=True)) == ["Sentry"]


def test_only_the_facilitator_edits_the_plan(session, facilitator, teammate_client):
    data = plan_data(session.feature, facilitator, title="Hijacked")
    response = teammate_client.post(
        reverse("session_edit", kwargs={"session_id": session.pk}), data
    )
    assert response.status_code == 403
    session.refresh_from_db()
    assert session.title == "Bulk export walkthrough"


def test_a_member_does_not_get_the_edit_form(session, teammate_client):
    response = teammate_client.get(reverse("session_edit", kwargs={"session_id": session.pk}))
    assert response.status_code == 403


def test_outsider_gets_404_on_every_plan_path(session, facilitator, outsider_client):
    kwargs = {"session_id": session.pk}
    assert outsider_client.get(reverse("session_plan", kwargs=kwargs)).status_code == 404
    assert outsider_client.get(reverse("session_edit", kwargs=kwargs)).status_code == 404
    response = outsider_client.post(
        reverse("session_edit", kwargs=kwargs), plan_data(session.feature, facilitator)
    )
    assert response.status_code == 404


def test_unknown_session_is_404(teammate_client):
    response = teammate_client.get("/sessions/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404


def test_anonymous_user_is_sent_to_login(session):
    response = Client().get(reverse("session_plan", kwargs={"session_id": session.pk}))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_session_status_carries_the_whole_lifecycle():
    assert EnsembleSession.Status.values == [
        "planning",
        "live",
        "review",
        "decided",
        "cancelled",
    ]


def test_team_owner_can_stand_in_for_the_facilitator(session, team, facilitator):
    other_facilitator = UserFactory()
    session2 = SessionFactory(feature=session.feature, facilitator=other_facilitator)
    client = Client()
    client.force_login(facilitator)  # the team's owner
    response = client.get(reverse("session_edit", kwargs={"session_id": session2.pk}))
    assert response.status_code == 200


def test_plan_page_and_its_fragment_vary_on_hx_request(session, teammate_client):
    url = reverse("session_plan", kwargs={"session_id": session.pk})
    page = teammate_client.get(url)
    fragment = teammate_client.get(url, HTTP_HX_REQUEST="true")
    assert "<html" in page.content.decode()
    assert "<html" not in fragment.content.decode()
    for response in (page, fragment):
        assert "HX-Request" in response["Vary"]
