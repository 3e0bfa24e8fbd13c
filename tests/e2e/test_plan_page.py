"""Editing goals inline and giving roles, in a real browser."""

from __future__ import annotations

from playwright.sync_api import expect

from sessions_app.models import Participant
from tests.e2e.conftest import login
from tests.factories import PASSWORD, GoalFactory, MembershipFactory, UserFactory


def test_author_edits_a_goal_in_place(page, app_server, session, teammate, csp_violations):
    GoalFactory(session=session, author=teammate, text="Export many invoices")
    login(page, app_server, teammate.username, PASSWORD)
    page.goto(f"{app_server}/sessions/{session.pk}/")
    page.evaluate("window.__marker = 1")
    goals = page.get_by_role("list", name="Goals")

    goals.get_by_role("link", name="Edit").click()
    edit = goals.get_by_role("listitem").filter(has=page.get_by_role("button", name="Save goal"))
    edit.get_by_label("Goal").fill("Export 5,000 invoices in one go")
    edit.get_by_role("button", name="Save goal").click()

    item = goals.get_by_role("listitem").filter(has_text="Export 5,000 invoices in one go")
    expect(item).to_be_visible()
    expect(page.get_by_role("button", name="Save goal")).to_have_count(0)
    expect(page.get_by_text("Goal saved.")).to_be_visible()
    assert page.evaluate("window.__marker") == 1, "saving the goal reloaded the page"
    assert csp_violations == []


def test_facilitator_gives_roles_and_a_second_driver_is_refused(
    page, app_server, session, facilitator, teammate, csp_violations
):
    erin = UserFactory(username="erin")
    MembershipFactory(team=session.feature.team, user=erin)
    login(page, app_server, facilitator.username, PASSWORD)
    page.goto(f"{app_server}/sessions/{session.pk}/")
    roles = page.locator("#roles")

    roles.get_by_label("Member").select_option(label="sam")
    roles.get_by_label("Role", exact=True).select_option(label="Driver")
    roles.get_by_role("button", name="Add participant").click()
    expect(roles.get_by_text("sam joins as Driver.")).to_be_visible()

    roles.get_by_label("Member").select_option(label="erin")
    roles.get_by_label("Role", exact=True).select_option(label="Driver")
    roles.get_by_role("button", name="Add participant").click()

    expect(
        roles.get_by_text("sam is already the driver; give them another role first.")
    ).to_be_visible()
    assert list(Participant.objects.values_list("user__username", "role")) == [("sam", "driver")]
    assert csp_violations == []
