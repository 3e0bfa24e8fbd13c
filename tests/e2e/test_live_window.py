"""In a real browser: a long session's live room shows the latest notes, and
"Show earlier notes" brings the rest back in order, beside new notes arriving."""

from __future__ import annotations

import uuid

from django.utils import timezone
from playwright.sync_api import expect

from sessions_app.live_fragments import LIVE_WINDOW
from sessions_app.models import EnsembleSession, Note
from tests.e2e.conftest import login
from tests.factories import PASSWORD

TOTAL = LIVE_WINDOW + 50


def test_earlier_notes_load_on_demand_in_order(app_server, page, session, facilitator):
    Note.objects.bulk_create(
        Note(
            session=session,
            seq=seq,
            revision=seq,
            kind="observation",
            text=f"Step {seq}",
            author=facilitator,
            client_id=uuid.uuid4().hex,
        )
        for seq in range(1, TOTAL + 1)
    )
    EnsembleSession.objects.filter(pk=session.pk).update(
        status=EnsembleSession.Status.LIVE,
        started_at=timezone.now(),
        last_seq=TOTAL,
        revision=TOTAL,
    )
    login(page, app_server, "dana", PASSWORD)
    page.goto(f"{app_server}/sessions/{session.pk}/live/")
    expect(page.get_by_role("status")).to_have_text("Connected")
    notes = page.get_by_role("list", name="Notes").get_by_role("listitem")
    expect(notes).to_have_count(LIVE_WINDOW)
    expect(notes.first).to_contain_text(f"Step {TOTAL - LIVE_WINDOW + 1}")

    page.get_by_label("Note").fill("Written after the page loaded")
    page.get_by_role("button", name="Add note").click()
    expect(notes.last).to_contain_text("Written after the page loaded")

    page.get_by_role("button", name="Show earlier notes").click()
    expect(notes).to_have_count(TOTAL + 1)
    expect(page.get_by_role("button", name="Show earlier notes")).to_be_hidden()
    seqs = [int(s) for s in notes.evaluate_all("items => items.map((i) => i.dataset.seq)")]
    assert seqs == list(range(1, TOTAL + 2))
