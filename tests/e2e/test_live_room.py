"""The live room in two real browsers: dana facilitates and drives, sam takes notes.

Each person has their own browser context (their own cookies and localStorage).
Their websockets are routed through Playwright, so a test can cut a connection
and bring it back (see `Link`)."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import BrowserContext, Locator, Page, WebSocketRoute, expect

from sessions_app.models import EnsembleSession, Goal, Note, Participant
from tests.e2e.conftest import login
from tests.e2e.test_accessibility import assert_no_serious_violations
from tests.factories import PASSWORD, GoalFactory, ParticipantFactory

KINDS = ["Observation", "Journey", "Bug", "Friction", "Question", "Idea", "Error"]
MUST_GOAL = "Export 5,000 invoices without a timeout"
OTHER_GOAL = "Totals in the export match the ledger"
# While cut, the client's backoff grows towards 15 s between tries, so after
# the connection comes back the next try may be that far away.
RECONNECT_MS = 30_000


# For measuring delivery inside the browsers (Date.now() is one clock on one machine).
WATCH_FOR_NOTE = """text => {
  const list = document.getElementById("notes");
  const seen = () => [...list.querySelectorAll(".note[data-seq] .note-text")].some(
    (p) => p.textContent === text);
  new MutationObserver((_, observer) => {
    if (seen()) { window.__noteSeenAt = Date.now(); observer.disconnect(); }
  }).observe(list, {childList: true, subtree: true});
}"""
STAMP_SUBMIT = """() => document.getElementById("note-form").addEventListener(
  "submit", () => { window.__submittedAt = Date.now(); }, {once: true, capture: true})"""


class Link:
    """One page's websocket, routed through Playwright so that a test can cut it.

    `context.set_offline(True)` does not close an open websocket in Chromium;
    closing the routed socket with 1012 ("service restart") does, and sockets
    opened while cut are closed the same way at once. A socket opened while
    `swallow` is set passes its messages through this process, which records
    the page's in `sent` and drops the server's that `swallow` picks."""

    def __init__(self, page: Page) -> None:
        self.up = True
        self.sockets: list[WebSocketRoute] = []
        self.swallow: Callable[[dict], bool] | None = None
        self.sent: list[dict] = []  # what the page sent, while `swallow` is set
        page.route_web_socket(re.compile(r"/ws/sessions/"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        if not self.up:
            ws.close(code=1012, reason="cut by the test")
            return
        server = ws.connect_to_server()
        if self.swallow is not None:
            server.on_message(lambda message: self._forward(ws, message))
            ws.on_message(lambda message: self._record(server, message))
        self.sockets.append(ws)

    def _record(self, server: WebSocketRoute, message: str | bytes) -> None:
        self.sent.append(json.loads(message))
        server.send(message)

    def _forward(self, ws: WebSocketRoute, message: str | bytes) -> None:
        if self.swallow is None or not self.swallow(json.loads(message)):
            ws.send(message)

    def cut(self) -> None:
        self.up = False
        while self.sockets:
            self.sockets.pop().close(code=1012, reason="cut by the test")

    def restore(self) -> None:
        self.up = True


@dataclass
class Room:
    """dana and sam, each in the live room of one session."""

    base_url: str
    session: EnsembleSession
    dana: Page
    sam: Page
    dana_link: Link | None
    sam_link: Link | None
    csp_violations: list[str]
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    # Set before a click that should ask for confirmation; any other dialog is
    # dismissed and recorded.
    confirm_next: bool = False

    @property
    def url(self) -> str:
        return f"{self.base_url}/sessions/{self.session.pk}/live/"

    def assert_clean(self) -> None:
        """Nothing went wrong on either page that the assertions did not see."""
        assert self.page_errors == []
        assert self.csp_violations == []
        assert self.dialogs == []


# --- Finding things on the page, by their accessible names -------------------


def connection(page: Page) -> Locator:
    return page.get_by_role("status").filter(
        has_text=re.compile(r"^(Connected|Reconnecting|Offline)")
    )


def notes_list(page: Page) -> Locator:
    return page.get_by_role("list", name="Notes", exact=True)


def note_items(page: Page) -> Locator:
    return notes_list(page).get_by_role("listitem")


def note_item(page: Page, text: str) -> Locator:
    return note_items(page).filter(has_text=text)


def pending_items(page: Page) -> Locator:
    return note_items(page).filter(has_text="waiting to be sent")


def note_texts(page: Page) -> list[str]:
    return notes_list(page).locator(".note-text").all_text_contents()


def timeline_events(page: Page) -> Locator:
    """The session's events, which stand in the timeline between the notes
    but are not items of the list of notes."""
    return notes_list(page).locator(".event")


def goal_button(page: Page, goal: str, status: str) -> Locator:
    goals = page.get_by_role("list", name="Goals of this session", exact=True)
    return goals.get_by_role("listitem").filter(has_text=goal).get_by_role("button", name=status)


def role_badge(page: Page, username: str) -> Locator:
    participants = page.get_by_role("list", name="Participants", exact=True)
    return participants.get_by_role("listitem").filter(has_text=username).locator(".badge")


def assert_outbox_empty(page: Page) -> None:
    """Nothing left in localStorage to send (the status only counts it while not connected)."""
    page.wait_for_function(
        """() => Object.keys(localStorage)
            .filter((key) => key.startsWith("ensemble.outbox."))
            .every((key) => JSON.parse(localStorage.getItem(key)).length === 0)"""
    )


def write_note(page: Page, text: str, kind: str = "Observation") -> None:
    page.get_by_label("Kind").select_option(label=kind)
    page.get_by_label("Note").fill(text)
    page.get_by_role("button", name="Add note").click()


def watch(context: BrowserContext, room: Room, *, csp: bool) -> None:
    if csp:  # the `csp_violations` fixture watches the default context itself
        context.on(
            "console",
            lambda message: (
                room.csp_violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
    context.on("weberror", lambda error: room.page_errors.append(str(error.error)))

    def answer(dialog) -> None:
        if dialog.type == "confirm" and room.confirm_next:
            room.confirm_next = False
            dialog.accept()
            return
        room.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    context.on("dialog", answer)


# --- Fixtures -------------------------------------------------------------------------


@pytest.fixture
def live_session(session, facilitator, teammate) -> EnsembleSession:
    """dana drives (and facilitates), sam takes notes; two goals, one must-cover."""
    ParticipantFactory(
        session=session, user=facilitator, role=Participant.Role.DRIVER, rotation_position=0
    )
    ParticipantFactory(
        session=session, user=teammate, role=Participant.Role.NOTE_TAKER, rotation_position=1
    )
    GoalFactory(session=session, author=teammate, text=MUST_GOAL, must_cover=True)
    GoalFactory(
        session=session,
        author=facilitator,
        text=OTHER_GOAL,
        perspective=Goal.Perspective.ENGINEERING,
    )
    EnsembleSession.objects.filter(pk=session.pk).update(rotation_minutes=15)
    session.refresh_from_db()
    return session


@pytest.fixture
def open_room(
    context, new_context, app_server, live_session, facilitator, teammate, csp_violations
) -> Callable[..., Room]:
    """Opens the live room for dana (in the default context, whose CSP reports
    `csp_violations` collects) and for sam (in a context of his own)."""

    def open_(*, started: bool = True, cuttable: bool = True) -> Room:
        """`cuttable=False` leaves the websockets unrouted, as in real use."""
        if started:
            # Written directly: the start service would broadcast from this
            # process, whose thread Playwright's event loop occupies.
            EnsembleSession.objects.filter(pk=live_session.pk).update(
                status=EnsembleSession.Status.LIVE, started_at=timezone.now()
            )
        dana, sam_context = context.new_page(), new_context()
        sam = sam_context.new_page()
        room = Room(
            base_url=app_server,
            session=live_session,
            dana=dana,
            sam=sam,
            dana_link=Link(dana) if cuttable else None,
            sam_link=Link(sam) if cuttable else None,
            csp_violations=csp_violations,
        )
        watch(context, room, csp=False)
        watch(sam_context, room, csp=True)
        for page, user in ((dana, facilitator), (sam, teammate)):
            login(page, app_server, user.username, PASSWORD)
            page.goto(room.url)
            expect(connection(page)).to_have_text("Connected")
        return room

    return open_


# --- Tests ----------------------------------------------------------------------------


def test_two_people_run_a_whole_session(open_room, record_property):
    room = open_room(started=False, cuttable=False)
    dana, sam = room.dana, room.sam
    for page in (dana, sam):
        expect(page.get_by_role("heading", name="In the room (2)")).to_be_visible()
    expect(sam.get_by_text("Planning", exact=True)).to_be_visible()
    expect(sam.get_by_role("button", name="Start session")).to_have_count(0)

    # Start: dana's press reaches sam's page over the websocket.
    dana.get_by_role("button", name="Start session").click()
    for page in (dana, sam):
        expect(page.get_by_text("Live", exact=True)).to_be_visible()
        expect(timeline_events(page)).to_contain_text(["dana started the session"])
        expect(page.get_by_text(re.compile(r"^\d\d:\d\d of 60:00$"))).to_be_visible()
        expect(
            page.get_by_text(re.compile(r"^Next handover in 1[45]:\d\d: sam drives"))
        ).to_be_visible()
    expect(dana.get_by_role("button", name="Start session")).to_have_count(0)
    expect(dana.get_by_role("button", name="End session")).to_be_visible()
    expect(sam.get_by_role("button", name="End session")).to_have_count(0)

    # Notes of every kind, from both pages, each timed until the other page
    # shows it: from the test's side (filling the form and Playwright's polling
    # included), and inside the browsers (the submit to the reader's DOM change).
    latencies, in_browser = [], []
    for index, kind in enumerate(KINDS):
        writer, reader = (dana, sam) if index % 2 == 0 else (sam, dana)
        text = f"{kind} #{index + 1}, by {'dana' if writer is dana else 'sam'}"
        reader.evaluate(WATCH_FOR_NOTE, text)
        writer.evaluate(STAMP_SUBMIT)
        started = time.monotonic()
        write_note(writer, text, kind)
        expect(note_item(reader, text)).to_be_visible()
        latencies.append((time.monotonic() - started) * 1000)
        in_browser.append(
            reader.evaluate("window.__noteSeenAt") - writer.evaluate("window.__submittedAt")
        )
        expect(note_item(reader, text)).to_contain_text(kind)
    summary = (
        f"note delivery to the other page, {len(KINDS)} notes: "
        f"test-measured median {statistics.median(latencies):.0f} ms "
        f"(max {max(latencies):.0f}; {', '.join(f'{ms:.0f}' for ms in latencies)}), "
        f"in-browser median {statistics.median(in_browser):.0f} ms "
        f"(max {max(in_browser)}; {', '.join(str(ms) for ms in in_browser)})"
    )
    print(f"\n{summary}")
    record_property("note_delivery", summary)
    record_property("note_delivery_median_ms", round(statistics.median(latencies)))
    expected = [f"{kind} #{i + 1}, by {('dana', 'sam')[i % 2]}" for i, kind in enumerate(KINDS)]
    for page in (dana, sam):
        expect(pending_items(page)).to_have_count(0)
        assert note_texts(page) == expected
    assert list(Note.objects.order_by("seq").values_list("seq", "text")) == list(
        enumerate(expected, start=1)
    )

    # sam ticks a goal; dana sees it pressed, and the must-cover progress.
    goal_button(sam, MUST_GOAL, "Covered").click()
    for page in (dana, sam):
        expect(goal_button(page, MUST_GOAL, "Covered")).to_have_attribute("aria-pressed", "true")
        expect(goal_button(page, MUST_GOAL, "Open")).to_have_attribute("aria-pressed", "false")
        expect(page.get_by_label("Must-cover covered: 1 of 1")).to_be_visible()
        expect(
            timeline_events(page).filter(has_text=f"sam marked “{MUST_GOAL}” as covered")
        ).to_have_count(1)
    assert Goal.objects.get(text=MUST_GOAL).status == Goal.Status.COVERED

    # dana rotates now: sam drives, dana navigates, on both pages.
    for page in (dana, sam):
        expect(role_badge(page, "dana")).to_have_text("Driver")
        expect(role_badge(page, "sam")).to_have_text("Note-taker")
    dana.get_by_role("button", name="Rotate now").click()
    for page in (dana, sam):
        expect(role_badge(page, "sam")).to_have_text("Driver")
        expect(role_badge(page, "dana")).to_have_text("Navigator")
        expect(timeline_events(page).last).to_contain_text("Handover: sam drives, dana navigates")
    assert dict(Participant.objects.values_list("user__username", "role")) == {
        "sam": "driver",
        "dana": "navigator",
    }

    # End: both pages show the session in review.
    dana.get_by_role("button", name="End session").click()
    for page in (dana, sam):
        expect(page.get_by_text("In review", exact=True)).to_be_visible()
        expect(timeline_events(page).last).to_contain_text("dana ended the session")
        expect(page.get_by_role("button", name="End session")).to_have_count(0)
        expect(page.get_by_role("button", name="Rotate now")).to_have_count(0)
        expect(connection(page)).to_have_text("Connected")
    room.session.refresh_from_db()
    assert room.session.status == EnsembleSession.Status.REVIEW
    assert room.session.ended_at is not None
    room.assert_clean()


def test_html_in_a_note_shows_as_text(open_room):
    room = open_room()
    text = "Pasted from the log: <img src=x onerror=alert(1)> and <b>bold</b>"

    write_note(room.sam, text, "Error")

    for page in (room.sam, room.dana):
        expect(note_item(page, "<img src=x onerror=alert(1)>")).to_be_visible()
        expect(notes_list(page).locator(".note-text")).to_have_text([text])
        expect(notes_list(page).locator("img, b")).to_have_count(0)
    # And as the page renders it from the database.
    room.dana.reload()
    expect(notes_list(room.dana).locator(".note-text")).to_have_text([text])
    expect(notes_list(room.dana).locator("img, b")).to_have_count(0)
    assert Note.objects.get().text == text
    room.assert_clean()  # no alert() dialog, no CSP report of a blocked handler


def test_keyboard_flow_writes_a_multiline_note(open_room):
    room = open_room()
    sam = room.sam
    note_field = sam.get_by_label("Note")
    sam.get_by_label("Filter by author").focus()

    sam.keyboard.press("Alt+n")
    expect(note_field).to_be_focused()
    sam.keyboard.press("Alt+3")
    expect(sam.get_by_label("Kind")).to_have_value("bug")
    expect(note_field).to_be_focused()
    sam.keyboard.type("Export stops at 1,000 rows")
    sam.keyboard.press("Shift+Enter")
    sam.keyboard.type("Steps: select all, export")
    expect(note_field).to_have_value("Export stops at 1,000 rows\nSteps: select all, export")
    sam.keyboard.press("Enter")

    expect(note_field).to_have_value("")
    expect(note_field).to_be_focused()
    for page in (sam, room.dana):
        item = note_item(page, "Export stops at 1,000 rows")
        expect(item).to_contain_text("Bug")
        expect(item.locator(".note-text")).to_have_js_property(
            "innerText", "Export stops at 1,000 rows\nSteps: select all, export"
        )
    note = Note.objects.get()
    assert (note.kind, note.text) == (
        "bug",
        "Export stops at 1,000 rows\nSteps: select all, export",
    )
    room.assert_clean()


def test_author_edits_and_deletes_their_note_live(open_room):
    room = open_room()
    dana, sam = room.dana, room.sam
    write_note(sam, "Export button is hard to find", "Friction")
    mine, theirs = note_item(sam, "hard to find"), note_item(dana, "hard to find")
    expect(theirs).to_be_visible()
    expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)
    expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)

    mine.get_by_role("button", name="Edit").click()
    sam.get_by_label("Edit text").fill("Export button is hidden in the overflow menu")
    sam.get_by_role("button", name="Save").click()

    for page in (sam, dana):
        edited = note_item(page, "hidden in the overflow menu")
        expect(edited).to_contain_text("(edited)")
        expect(note_item(page, "hard to find")).to_have_count(0)
        expect(note_items(page)).to_have_count(1)
    expect(note_item(dana, "overflow menu").get_by_role("button", name="Edit")).to_have_count(0)

    room.confirm_next = True  # "Delete this note for everyone?"
    note_item(sam, "overflow menu").get_by_role("button", name="Delete").click()

    for page in (sam, dana):
        expect(note_items(page)).to_have_count(0)
    note = Note.objects.get()
    assert note.deleted_at is not None
    assert note.text == "Export button is hidden in the overflow menu"
    dana.reload()
    expect(connection(dana)).to_have_text("Connected")
    expect(note_items(dana)).to_have_count(0)
    assert not room.confirm_next, "Delete did not ask for confirmation"
    room.assert_clean()


def test_filters_hide_the_other_notes(open_room):
    room = open_room()
    dana, sam = room.dana, room.sam
    write_note(dana, "dana: totals differ by a cent", "Bug")
    write_note(dana, "dana: offer a CSV preview", "Idea")
    write_note(sam, "sam: export hangs at 99%", "Bug")
    write_note(sam, "sam: is the limit 5,000?", "Question")
    expect(note_items(dana)).to_have_count(4)
    expect(pending_items(dana)).to_have_count(0)

    dana.get_by_label("Filter by type").select_option(label="Bug")
    expect(note_items(dana)).to_have_text([re.compile("totals differ"), re.compile("hangs at 99%")])

    dana.get_by_label("Filter by author").select_option(label="sam")
    expect(note_items(dana)).to_have_text([re.compile("hangs at 99%")])

    # A note that arrives while filtered is filtered too.
    write_note(sam, "sam: a second bug, the file name is empty", "Bug")
    write_note(sam, "sam: an observation nobody filtered for", "Observation")
    expect(note_items(dana)).to_have_text(
        [re.compile("hangs at 99%"), re.compile("file name is empty")]
    )

    dana.get_by_label("Filter by type").select_option(label="All types")
    expect(note_items(dana)).to_have_count(4)
    expect(note_item(dana, "dana:")).to_have_count(0)
    dana.get_by_label("Filter by author").select_option(label="Everyone")
    expect(note_items(dana)).to_have_count(6)
    # sam's page was never filtered.
    expect(note_items(sam)).to_have_count(6)
    room.assert_clean()


def test_outsider_gets_404_on_the_live_room(page, app_server, live_session, outsider):
    login(page, app_server, outsider.username, PASSWORD)

    response = page.goto(f"{app_server}/sessions/{live_session.pk}/live/")

    assert response is not None and response.status == 404
    expect(page.get_by_text(live_session.title)).to_have_count(0)


def test_live_room_has_no_serious_accessibility_violations(open_room):
    room = open_room()
    dana, sam = room.dana, room.sam
    for index, kind in enumerate(KINDS):
        write_note(dana if index % 2 else sam, f"A note of the kind {kind}", kind)
    expect(note_items(dana)).to_have_count(len(KINDS))
    goal_button(dana, MUST_GOAL, "Problem found").click()
    expect(goal_button(sam, MUST_GOAL, "Problem found")).to_have_attribute("aria-pressed", "true")
    axe = Axe()

    assert_no_serious_violations(axe, dana)
    assert_no_serious_violations(axe, sam)

    # With a note being edited.
    note_item(sam, "kind Observation").get_by_role("button", name="Edit").click()
    expect(sam.get_by_label("Edit text")).to_be_focused()
    assert_no_serious_violations(axe, sam)
    room.assert_clean()


def test_a_pending_note_has_no_serious_accessibility_violations(open_room):
    room = open_room()
    room.sam_link.cut()
    write_note(room.sam, "Written while the connection is cut", "Journey")
    expect(pending_items(room.sam)).to_have_count(1)

    assert_no_serious_violations(Axe(), room.sam)
    room.assert_clean()
