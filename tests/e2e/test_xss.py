"""Stored XSS in a real browser: markup typed into a note reaches another
person's live room as text, and the Content-Security-Policy stops an inline
script that lacks the page's nonce even if some markup ever got through."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import login
from tests.factories import PASSWORD, ParticipantFactory

MARKUP = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script><b>bold</b>'
# What an escaping bug would put in a page: a script and an event handler, no nonce.
INJECT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.__xss = 3";
  document.querySelector("main").append(script);
  document.querySelector("main").insertAdjacentHTML(
    "beforeend", '<img src="/no-such-image" onerror="window.__xss = 4">');
}"""


def go_live(session, facilitator, teammate) -> None:
    ParticipantFactory(session=session, user=teammate, role="driver")
    ParticipantFactory(session=session, user=facilitator, role="navigator")
    session.status = "live"
    session.save()


def open_room(page: Page, base_url: str, username: str, session) -> None:
    login(page, base_url, username, PASSWORD)
    page.goto(f"{base_url}/sessions/{session.pk}/live/")
    expect(page.get_by_role("status").filter(has_text=re.compile("^Connected"))).to_be_visible()


def test_markup_in_a_note_reaches_another_browser_as_text(
    page, new_context, app_server, session, facilitator, teammate, csp_violations
):
    go_live(session, facilitator, teammate)
    open_room(page, app_server, "dana", session)
    sam = new_context().new_page()
    open_room(sam, app_server, "sam", session)

    sam.get_by_label("Note").fill(MARKUP)
    sam.get_by_role("button", name="Add note").click()

    notes = page.get_by_role("list", name="Notes", exact=True)
    expect(notes.locator(".note-text")).to_have_text([MARKUP])
    for seen in (page, sam):
        assert seen.evaluate("() => window.__xss") is None
        assert seen.locator("#notes img, #notes script, #notes b").count() == 0
    # Nothing was even attempted: escaped markup creates no element to block.
    assert csp_violations == []


def test_the_csp_blocks_an_inline_script_without_the_nonce(
    page, app_server, session, facilitator, teammate, csp_violations
):
    """As if a template ever forgot to escape: an inline script and an event
    handler without the page's nonce land in the live room. The browser runs
    neither, while the page's own (nonced) scripts run."""
    go_live(session, facilitator, teammate)
    open_room(page, app_server, "sam", session)  # the live client, nonced, connected
    policy = page.request.get(page.url).headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'nonce-" in policy

    with page.expect_console_message(lambda message: "event handler" in message.text):
        page.evaluate(INJECT)

    assert page.evaluate("() => window.__xss") is None
    # The browser says why: both broke the policy's script-src.
    blocked = [v for v in csp_violations if "script-src" in v]
    assert any("inline script" in v for v in blocked), csp_violations
    assert any("event handler" in v for v in blocked), csp_violations
