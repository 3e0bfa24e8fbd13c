"""The whole "after", in real browsers: dana ends a live session with notes, sam
gives his confidence, dana adds a follow-up, reveals the votes, records "Go with
conditions", revises it to "Go", and downloads the three exports."""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import uuid

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import Page, expect

from sessions_app.models import (
    ConfidenceVote,
    Decision,
    EnsembleSession,
    FollowUp,
    Goal,
    Note,
    Participant,
    RolloutStage,
)
from sessions_app.models.rollout import DEFAULT_PLAN
from tests.e2e.conftest import login
from tests.e2e.test_accessibility import assert_no_serious_violations
from tests.factories import PASSWORD, GoalFactory, ParticipantFactory

MUST_GOAL = "Export 5,000 invoices without a timeout"
BUG = 'Totals differ by 0,01 € on "large" exports'
FRICTION = "The export button hides under\nthe overflow menu"


@pytest.fixture
def axe() -> Axe:
    return Axe()


@pytest.fixture
def live_session(session, facilitator, teammate) -> EnsembleSession:
    """Live for ten minutes, with three notes (one deleted) and a must-cover goal.

    Rows are written directly: a service would broadcast from this process,
    whose thread Playwright's event loop occupies."""
    ParticipantFactory(session=session, user=facilitator, role=Participant.Role.NAVIGATOR)
    ParticipantFactory(session=session, user=teammate, role=Participant.Role.DRIVER)
    goal = GoalFactory(session=session, author=teammate, text=MUST_GOAL, must_cover=True)
    started = timezone.now() - datetime.timedelta(minutes=10)
    written = [
        (teammate, "bug", BUG, goal, 2),
        (facilitator, "idea", "Deleted idea", None, 3),
        (facilitator, "friction", FRICTION, None, 4),
    ]
    for seq, (author, kind, text, for_goal, minute) in enumerate(written, start=1):
        Note.objects.create(
            session=session,
            seq=seq,
            revision=seq,
            kind=kind,
            text=text,
            author=author,
            goal=for_goal,
            client_id=uuid.uuid4().hex,
        )
        Note.objects.filter(session=session, seq=seq).update(
            created_at=started + datetime.timedelta(minutes=minute)
        )
    Note.objects.filter(session=session, seq=2).update(deleted_at=timezone.now())
    EnsembleSession.objects.filter(pk=session.pk).update(
        status=EnsembleSession.Status.LIVE, started_at=started, last_seq=3, revision=3
    )
    session.refresh_from_db()
    return session


def download(page: Page, link: str) -> str:
    with page.expect_download() as info:
        page.get_by_role("link", name=link, exact=True).click()
    return info.value.path().read_text(encoding="utf-8")


def test_end_vote_decide_revise_and_export(
    axe, page, new_context, app_server, live_session, facilitator, teammate, csp_violations
):
    dana = page
    page_errors: list[str] = []
    dana.on("pageerror", lambda error: page_errors.append(str(error)))
    login(dana, app_server, facilitator.username, PASSWORD)

    # dana ends the live session and opens its review.
    dana.goto(f"{app_server}/sessions/{live_session.pk}/live/")
    dana.get_by_role("button", name="End session").click()
    expect(dana.get_by_text("In review", exact=True)).to_be_visible()
    dana.get_by_role("link", name="Review", exact=True).click()
    expect(dana.get_by_role("heading", name=f"Review: {live_session.title}")).to_be_visible()
    expect(dana.get_by_text("0 of 2 have voted.")).to_be_visible()

    # sam gives his confidence; nobody sees the numbers yet.
    sam = new_context().new_page()
    sam.on("pageerror", lambda error: page_errors.append(str(error)))
    login(sam, app_server, teammate.username, PASSWORD)
    sam.goto(f"{app_server}/sessions/{live_session.pk}/review/")
    expect(sam.get_by_role("button", name="Record decision")).to_have_count(0)
    sam.get_by_role("radio", name="4", exact=True).check()
    sam.get_by_label("Comment").fill("Rounding worries me")
    sam.get_by_role("button", name="Send my confidence").click()
    expect(sam.get_by_text("Your confidence vote is in")).to_be_visible()
    expect(sam.get_by_role("button", name="Change my confidence")).to_be_visible()
    expect(sam.get_by_role("table", name="Fist-of-five votes")).to_have_count(0)

    # dana adds the condition as a follow-up for sam.
    dana.reload()
    expect(dana.get_by_text("Voted so far: sam.")).to_be_visible()
    dana.get_by_label("Follow-up", exact=True).fill("Fix the rounding of totals")
    dana.get_by_label("Owner").select_option(label="sam")
    dana.get_by_label("Due").fill("2030-04-01")
    dana.get_by_label("Tracker link").fill("https://tracker.example/INV-42")
    dana.get_by_role("button", name="Add follow-up").click()
    expect(dana.get_by_text("Follow-up added.")).to_be_visible()
    follow_ups = dana.locator("#follow-ups").get_by_role("listitem")
    expect(follow_ups).to_have_count(1)
    expect(follow_ups).to_contain_text("owner sam · due 1 Apr 2030")

    # dana reveals the votes.
    dana.get_by_role("button", name="Reveal votes").click()
    distribution = dana.get_by_role("table", name="Fist-of-five votes")
    expect(distribution.get_by_role("row", name="4 1")).to_be_visible()
    expect(dana.get_by_text("sam: 4 — Rounding worries me")).to_be_visible()

    # An empty rationale is refused, with the reason on the page.
    dana.get_by_label("Decision").select_option(label="Go with conditions")
    dana.get_by_role("button", name="Record decision").click()
    expect(dana.get_by_text("Say why: the rationale is required.")).to_be_visible()
    assert not Decision.objects.exists()

    # "Go with conditions", with its rationale.
    dana.get_by_label("Decision").select_option(label="Go with conditions")
    dana.get_by_label("Rationale").fill("Ship once the rounding is fixed")
    dana.get_by_role("button", name="Record decision").click()
    expect(dana.get_by_text("Decision recorded: Go with conditions.")).to_be_visible()
    decision = dana.locator("#decision")
    expect(decision.locator(".decision")).to_have_text("Go with conditions")
    expect(dana.get_by_text("Decided", exact=True)).to_be_visible()

    # Revised to "Go", with its reason; the first decision stays in the history.
    dana.get_by_label("Decision").select_option(label="Go")
    dana.get_by_label("Rationale").fill("Rounding fixed and verified")
    dana.get_by_label("Reason for the revision").fill("INV-42 shipped")
    dana.get_by_role("button", name="Record decision").click()
    expect(dana.get_by_text("Decision recorded: Go.")).to_be_visible()
    expect(decision.locator(".decision")).to_have_text("Go")
    expect(decision).to_contain_text("revised because: INV-42 shipped")
    history = decision.get_by_role("listitem")
    expect(history).to_have_count(1)
    expect(history).to_contain_text("Go with conditions — Ship once the rounding is fixed")

    # sam can no longer change his vote once decided.
    sam.reload()
    expect(sam.get_by_role("button", name="Change my confidence")).to_have_count(0)

    assert list(
        Decision.objects.order_by("decided_at", "id").values_list("outcome", "revision_reason")
    ) == [("go_with_conditions", ""), ("go", "INV-42 shipped")]
    assert list(ConfidenceVote.objects.values_list("voter__username", "score")) == [("sam", 4)]
    assert FollowUp.objects.get().owner == teammate
    live_session.refresh_from_db()
    assert live_session.status == EnsembleSession.Status.DECIDED
    assert Goal.objects.get().must_cover

    # The review page holds up for screen readers, decided and with everything on it.
    assert_no_serious_violations(axe, dana)

    # The three exports.
    data = json.loads(download(dana, "JSON"))
    assert data["schema"] == "ensemble.session/1"
    assert data["session"]["status"] == "decided"
    assert [(note["seq"], note["kind"], note["text"]) for note in data["notes"]] == [
        (1, "bug", BUG),
        (3, "friction", FRICTION),
    ]
    assert data["notes"][0]["goal"] == MUST_GOAL
    assert (data["decision"]["outcome"], data["decision"]["decided_by"]) == ("go", "dana")
    assert data["follow_ups"] == [
        {"text": "Fix the rounding of totals", "owner": "sam", "due": "2030-04-01", "done": False}
    ]

    rows = list(csv.reader(io.StringIO(download(dana, "CSV"), newline="")))
    assert rows[0] == ["seq", "time", "elapsed", "kind", "author", "goal", "text"]
    assert [row[0] for row in rows[1:]] == ["1", "3"]
    assert rows[1][2:] == ["0:02:00", "bug", "sam", MUST_GOAL, BUG]
    assert rows[2][2:] == ["0:04:00", "friction", "dana", "", FRICTION]

    md = download(dana, "Markdown")
    assert md.startswith(f"# {live_session.title}\n")
    assert "**Go** — Rounding fixed and verified" in md
    assert f"- [open] {MUST_GOAL} (must cover)" in md
    assert f"- #1 Bug: {BUG}" in md
    assert "- [ ] Fix the rounding of totals — sam, due 2030-04-01" in md
    assert re.search(r"### Friction\n\n- #3 dana: The export button hides under the overflow", md)
    assert "Deleted idea" not in md

    # The decision opens the rollout plan's gate: dana approves the internal
    # tenant, then the pilot, which keeps the decision that let it through.
    for position, name in enumerate(DEFAULT_PLAN, start=1):
        RolloutStage.objects.create(feature=live_session.feature, position=position, name=name)
    dana.goto(f"{app_server}/features/{live_session.feature.pk}/")
    expect(dana.get_by_text(re.compile(r"^\s*Gate open: Go in"))).to_be_visible()
    dana.get_by_role("button", name="Approve Internal tenant").click()
    dana.get_by_role("button", name="Approve Pilot customers").click()
    pilot = dana.locator(".stage", has_text="Pilot customers")
    expect(pilot).to_contain_text("Approved")
    expect(pilot).to_contain_text(f"gated by Go in “{live_session.title}”")
    expect(dana.get_by_role("list", name="Audit trail")).to_contain_text(
        "dana approved “Pilot customers” (gated by Go)"
    )
    assert list(RolloutStage.objects.order_by("position").values_list("status", flat=True)) == [
        "approved",
        "approved",
        "pending",
        "pending",
    ]

    assert page_errors == []
    assert csp_violations == []
