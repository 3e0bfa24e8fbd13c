"""The goals board in a real browser: dana facilitates (she owns the team), sam is a teammate."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from playwright.sync_api import Locator, Page, expect

from sessions_app.models import EnsembleSession, Goal
from tests.e2e.conftest import login
from tests.factories import PASSWORD, GoalFactory, GoalVoteFactory


def open_board(page: Page, base_url: str, user: AbstractUser, session: EnsembleSession) -> None:
    login(page, base_url, user.username, PASSWORD)
    page.goto(f"{base_url}/sessions/{session.pk}/")


def goals_list(page: Page) -> Locator:
    return page.get_by_role("list", name="Goals")


def goal_item(page: Page, text: str) -> Locator:
    return goals_list(page).get_by_role("listitem").filter(has_text=text)


def add_goal(page: Page, text: str, perspective: str) -> None:
    # Loose label matches, as outside tests use them: each must find one field.
    page.get_by_label("Goal").fill(text)
    page.get_by_label("Perspective").select_option(label=perspective)
    page.get_by_role("button", name="Add goal").click()


def vote_button(page: Page, text: str) -> Locator:
    return goal_item(page, text).get_by_role("button", name="Vote", exact=True)


def test_two_members_collect_goals_and_vote_on_each_others(
    new_context, app_server, session, facilitator, teammate, csp_violations
):
    dana = new_context().new_page()
    open_board(dana, app_server, facilitator, session)
    expect(dana.get_by_text("No goals yet.")).to_be_visible()

    sam = new_context().new_page()
    open_board(sam, app_server, teammate, session)
    sam.evaluate("window.__marker = 1")
    add_goal(sam, "Export 5,000 invoices without a timeout", "Support")

    expect(goal_item(sam, "Export 5,000 invoices without a timeout")).to_be_visible()
    expect(sam.get_by_text("Goal added.")).to_be_visible()
    expect(sam.get_by_label("Goal")).to_have_value("")
    assert sam.evaluate("window.__marker") == 1, "adding a goal reloaded the page"
    expect(sam.get_by_role("button", name="Mark must-cover")).to_have_count(0)

    # dana sees sam's goal, adds her own, and votes for sam's.
    dana.reload()
    add_goal(dana, "Totals in the export match the ledger", "Engineering")
    expect(goal_item(dana, "Totals in the export match the ledger")).to_be_visible()
    vote = vote_button(dana, "Export 5,000 invoices")
    expect(vote).to_have_attribute("aria-pressed", "false")
    expect(vote).to_have_accessible_description("0 votes")

    vote.click()
    expect(vote).to_have_attribute("aria-pressed", "true")
    expect(vote).to_have_accessible_description("1 vote")
    # The board was swapped under her, but keyboard focus stays on the button.
    expect(vote).to_be_focused()

    # sam sees dana's goal and her vote, and votes for dana's goal.
    sam.reload()
    expect(vote_button(sam, "Export 5,000 invoices")).to_have_accessible_description("1 vote")
    expect(vote_button(sam, "Export 5,000 invoices")).to_have_attribute("aria-pressed", "false")
    vote_button(sam, "Totals in the export").click()
    expect(vote_button(sam, "Totals in the export")).to_have_attribute("aria-pressed", "true")

    dana.reload()
    expect(vote_button(dana, "Totals in the export")).to_have_accessible_description("1 vote")

    # Pressing again takes the vote back.
    vote.click()
    expect(vote).to_have_attribute("aria-pressed", "false")
    expect(vote).to_have_accessible_description("0 votes")
    assert csp_violations == []


def test_empty_goal_shows_an_error_and_adds_nothing(new_context, app_server, session, teammate):
    page = new_context().new_page()
    open_board(page, app_server, teammate, session)

    page.get_by_role("button", name="Add goal").click()

    goal_field = page.get_by_label("Goal")
    expect(goal_field).to_have_attribute("aria-invalid", "true")
    expect(goal_field).to_have_accessible_description(
        "Write the goal you want the session to cover."
    )
    expect(page.get_by_label("Perspective")).to_have_accessible_description(
        "Choose the perspective this goal comes from."
    )
    expect(goals_list(page)).to_have_count(0)
    assert not Goal.objects.exists()


def test_goal_is_added_without_javascript(new_context, app_server, session, teammate):
    page = new_context(java_script_enabled=False).new_page()
    open_board(page, app_server, teammate, session)

    add_goal(page, "Check the CSV opens in Excel", "Customer success")

    expect(page).to_have_url(f"{app_server}/sessions/{session.pk}/#goals")
    expect(goal_item(page, "Check the CSV opens in Excel")).to_contain_text("Customer success")


def test_goals_are_filtered_by_perspective(new_context, app_server, session, teammate):
    GoalFactory(session=session, text="Refund flow", perspective=Goal.Perspective.SUPPORT)
    GoalFactory(session=session, text="Queue depth", perspective=Goal.Perspective.ENGINEERING)
    page = new_context().new_page()
    open_board(page, app_server, teammate, session)
    filters = page.get_by_role("navigation", name="Board filter")

    filters.get_by_role("link", name="Engineering (1)").click()

    expect(goals_list(page).get_by_role("listitem")).to_have_count(1)
    expect(goal_item(page, "Queue depth")).to_be_visible()
    expect(filters.get_by_role("link", name="Engineering (1)")).to_have_attribute(
        "aria-current", "true"
    )
    expect(page).to_have_url(f"{app_server}/sessions/{session.pk}/?perspective=engineering")

    filters.get_by_role("link", name="All (2)").click()

    expect(goals_list(page).get_by_role("listitem")).to_have_count(2)


def test_facilitator_marks_a_goal_must_cover_and_it_moves_to_the_top(
    new_context, app_server, session, facilitator, teammate
):
    popular = GoalFactory(session=session, text="Popular goal", author=teammate)
    GoalVoteFactory(goal=popular, user=teammate)
    GoalFactory(session=session, text="Quiet goal", author=teammate)
    page = new_context().new_page()
    open_board(page, app_server, facilitator, session)
    goals = goals_list(page).get_by_role("listitem")
    expect(goals.first).to_contain_text("Popular goal")

    goal_item(page, "Quiet goal").get_by_role("button", name="Mark must-cover").click()

    expect(goals.first).to_contain_text("Quiet goal")
    expect(goals.first).to_contain_text("Must cover")
    expect(goals.first.get_by_role("button", name="Unmark must-cover")).to_be_visible()
