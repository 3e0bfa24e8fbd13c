"""axe-core finds no serious or critical accessibility violations on the main pages."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from sessions_app.models import Goal, Participant
from tests.e2e.conftest import login
from tests.factories import PASSWORD, GoalFactory, GoalVoteFactory, ParticipantFactory

BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture(scope="module")
def axe() -> Axe:
    return Axe()


def assert_no_serious_violations(axe: Axe, page: Page) -> None:
    violations = [
        violation
        for violation in axe.run(page).response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]
    report = "\n".join(
        f"{violation['id']} ({violation['impact']}): {violation['help']}\n"
        + "\n".join(f"    {node['target']}" for node in violation["nodes"])
        for violation in violations
    )
    if violations:
        pytest.fail(f"axe found violations on {page.url}:\n{report}")


@pytest.fixture
def busy_session(session, facilitator, teammate):
    """A session with participants and goals in every state the board shows."""
    ParticipantFactory(session=session, user=facilitator, role=Participant.Role.NAVIGATOR)
    ParticipantFactory(session=session, user=teammate, role=Participant.Role.DRIVER)
    voted = GoalFactory(session=session, author=teammate, text="Export 5,000 invoices")
    GoalVoteFactory(goal=voted, user=facilitator)
    GoalFactory(
        session=session,
        author=facilitator,
        text="Totals match the ledger",
        perspective=Goal.Perspective.ENGINEERING,
        must_cover=True,
    )
    GoalFactory(session=session, author=teammate, perspective=Goal.Perspective.DESIGN)
    return session


def test_login_page_has_no_serious_violations(axe, page, app_server):
    page.goto(f"{app_server}/accounts/login/")

    assert_no_serious_violations(axe, page)


def test_dashboard_has_no_serious_violations(axe, page, app_server, busy_session, facilitator):
    login(page, app_server, facilitator.username, PASSWORD)
    expect(page.get_by_role("link", name=busy_session.title)).to_be_visible()

    assert_no_serious_violations(axe, page)


def test_session_page_has_no_serious_violations(axe, page, app_server, busy_session, facilitator):
    login(page, app_server, facilitator.username, PASSWORD)
    page.goto(f"{app_server}/sessions/{busy_session.pk}/")
    expect(page.get_by_role("list", name="Goals").get_by_role("listitem")).to_have_count(3)

    assert_no_serious_violations(axe, page)

    # The board again, showing the errors of an empty goal.
    page.get_by_role("button", name="Add goal").click()
    expect(page.get_by_label("Goal")).to_have_attribute("aria-invalid", "true")

    assert_no_serious_violations(axe, page)
