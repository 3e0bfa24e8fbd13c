"""The live room when the connection fails: no note lost, none doubled.

Each page's websocket is routed through Playwright (`Link`), which closes it
with 1012 and refuses new ones while "cut", as a dropped network or a restarted
server would."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from sessions_app.models import EnsembleSession, Note
from tests.e2e import test_live_room as live
from tests.e2e.test_live_room import (
    OTHER_GOAL,
    RECONNECT_MS,
    assert_outbox_empty,
    connection,
    goal_button,
    note_item,
    note_items,
    note_texts,
    notes_list,
    pending_items,
    timeline_events,
    write_note,
)

# The two people in the live room, as test_live_room opens it.
live_session = live.live_session
open_room = live.open_room


def waiting(count: int, state: str = "Reconnecting…|Offline") -> re.Pattern[str]:
    noun = "note" if count == 1 else "notes"
    return re.compile(rf"^({state}) · {count} {noun} waiting to be sent$")


def test_notes_written_on_both_sides_while_cut_arrive_once_in_one_order(open_room):
    room = open_room()
    dana, sam = room.dana, room.sam
    write_note(dana, "before: dana opens the export page", "Journey")
    write_note(sam, "before: sam sees the new button", "Observation")
    for page in (dana, sam):
        expect(note_items(page)).to_have_count(2)

    # dana's connection drops (the browser still thinks it is online); sam's
    # browser goes offline altogether.
    room.dana_link.cut()
    room.sam_link.cut()
    sam.context.set_offline(True)
    expect(connection(dana)).to_have_text("Reconnecting…")
    expect(connection(sam)).to_have_text("Offline")
    written = {
        dana: ["cut: dana 1, export starts", "cut: dana 2, spinner forever"],
        sam: ["cut: sam 1, no progress shown", "cut: sam 2, tab title unchanged", "cut: sam 3"],
    }
    kinds = ["Bug", "Friction", "Question"]
    for index in range(3):
        for page in (sam, dana):
            if index < len(written[page]):
                write_note(page, written[page][index], kinds[index])
    # Over plain HTTP, which still works for dana, she ticks a goal meanwhile.
    goal_button(dana, OTHER_GOAL, "Covered").click()
    expect(goal_button(dana, OTHER_GOAL, "Covered")).to_have_attribute("aria-pressed", "true")

    expect(connection(dana)).to_have_text(waiting(2, "Reconnecting…"))
    expect(connection(sam)).to_have_text(waiting(3, "Offline"))
    for page in (dana, sam):
        expect(pending_items(page)).to_have_count(len(written[page]))
        for text in written[page]:
            expect(note_item(page, text)).to_contain_text("waiting to be sent")
        # Nothing from the other side arrives while cut.
        expect(note_items(page)).to_have_count(2 + len(written[page]))
    expect(goal_button(sam, OTHER_GOAL, "Covered")).to_have_attribute("aria-pressed", "false")
    assert Note.objects.count() == 2

    cut_ended = time.monotonic()
    room.dana_link.restore()
    room.sam_link.restore()
    sam.context.set_offline(False)
    for page in (dana, sam):
        expect(connection(page)).to_have_text("Connected", timeout=RECONNECT_MS)
    total = 2 + len(written[dana]) + len(written[sam])
    for page in (dana, sam):
        expect(note_items(page)).to_have_count(total)
        expect(pending_items(page)).to_have_count(0)
        assert_outbox_empty(page)
    resync = time.monotonic() - cut_ended
    print(f"\nboth pages connected and in sync {resync:.1f} s after the connection came back")

    in_db = list(
        Note.objects.filter(session=room.session).order_by("seq").values_list("seq", "text")
    )
    assert [seq for seq, _ in in_db] == list(range(1, total + 1))
    texts = [text for _, text in in_db]
    assert sorted(texts) == sorted(
        ["before: dana opens the export page", "before: sam sees the new button"]
        + written[dana]
        + written[sam]
    )
    assert note_texts(dana) == texts
    assert note_texts(sam) == texts
    # Each side's notes keep the order they were written in.
    for page in (dana, sam):
        assert [t for t in texts if t in written[page]] == written[page]
    # The goal ticked while sam was away reached him, once, with its log line.
    expect(goal_button(sam, OTHER_GOAL, "Covered")).to_have_attribute("aria-pressed", "true")
    for page in (dana, sam):
        expect(timeline_events(page)).to_have_text(
            [re.compile(f"dana marked “{OTHER_GOAL}” as covered")]
        )

    # And a reload shows the same timeline, now from the database.
    sam.reload()
    expect(connection(sam)).to_have_text("Connected")
    assert note_texts(sam) == texts
    room.assert_clean()


def test_a_lost_broadcast_is_noticed_by_the_gap_and_replayed(open_room):
    room = open_room()
    dana, sam = room.dana, room.sam
    lost: list[int] = []

    def lose_the_first_note(message: dict) -> bool:
        if message.get("type") == "note" and not lost:
            lost.append(message["seq"])
            return True
        return False

    room.sam_link.swallow = lose_the_first_note
    room.sam_link.cut()
    room.sam_link.restore()
    expect(connection(sam)).to_have_text("Connected", timeout=RECONNECT_MS)

    write_note(dana, "first: lost on its way to sam", "Bug")
    expect(note_item(dana, "first:")).not_to_contain_text("waiting to be sent")
    write_note(dana, "second: arrives, and shows sam a gap", "Observation")

    expect(notes_list(sam).locator(".note-text")).to_have_text(
        ["first: lost on its way to sam", "second: arrives, and shows sam a gap"]
    )
    assert lost == [1]
    expect(connection(sam)).to_have_text("Connected")
    room.assert_clean()


def test_a_pending_note_survives_a_reload_and_is_sent_once(open_room):
    room = open_room()
    dana, sam = room.dana, room.sam
    room.sam_link.cut()
    expect(connection(sam)).to_have_text(re.compile(r"^(Reconnecting…|Offline)$"))
    write_note(sam, "Typed on the train, before the tunnel", "Observation")
    expect(connection(sam)).to_have_text(waiting(1))

    sam.reload()

    pending = note_item(sam, "before the tunnel")
    expect(pending).to_contain_text("waiting to be sent")
    expect(pending).to_contain_text("Observation")
    expect(connection(sam)).to_have_text(waiting(1))
    assert not Note.objects.exists()

    room.sam_link.restore()

    expect(connection(sam)).to_have_text("Connected", timeout=RECONNECT_MS)
    for page in (sam, dana):
        expect(note_items(page)).to_have_count(1)
        expect(note_item(page, "before the tunnel")).not_to_contain_text("waiting to be sent")
    note = Note.objects.get()
    assert (note.text, note.kind, note.author.username) == (
        "Typed on the train, before the tunnel",
        "observation",
        "sam",
    )
    assert_outbox_empty(sam)
    # A second reload finds nothing left in the outbox to send again.
    sam.reload()
    expect(connection(sam)).to_have_text("Connected")
    expect(note_items(sam)).to_have_count(1)
    expect(pending_items(sam)).to_have_count(0)
    assert Note.objects.count() == 1
    room.assert_clean()


def test_a_note_whose_acknowledgement_is_lost_is_resent_and_stored_once(open_room):
    room = open_room()
    dana, sam = room.dana, room.sam
    link = room.sam_link
    # sam's next connection loses every answer about notes: the server stores
    # the note, but sam's page never hears of it.
    link.swallow = lambda message: message.get("type") in {"ack", "note"}
    link.cut()
    link.restore()
    expect(connection(sam)).to_have_text("Connected", timeout=RECONNECT_MS)

    write_note(sam, "Stored, but the answer never came", "Bug")

    expect(note_item(dana, "the answer never came")).to_be_visible()
    expect(pending_items(sam)).to_have_count(1)
    assert Note.objects.count() == 1

    # The connection drops; the page still holds the note as unsent.
    link.cut()
    expect(connection(sam)).to_have_text(waiting(1))
    link.swallow = lambda message: False  # keep recording what sam sends
    link.restore()

    expect(connection(sam)).to_have_text("Connected", timeout=RECONNECT_MS)
    expect(pending_items(sam)).to_have_count(0)
    assert_outbox_empty(sam)
    for page in (sam, dana):
        expect(note_items(page)).to_have_count(1)
        expect(note_item(page, "the answer never came")).to_contain_text("Bug")
    # Sent twice with one client id, stored once.
    posted = [message for message in link.sent if message["type"] == "note"]
    assert len(posted) == 2
    assert posted[0]["client_id"] == posted[1]["client_id"] == Note.objects.get().client_id
    link.cut()
    expect(connection(sam)).to_have_text("Reconnecting…")
    room.assert_clean()


def test_a_reload_after_a_lost_acknowledgement_shows_the_note_once(open_room):
    room = open_room()
    sam, link = room.sam, room.sam_link
    link.swallow = lambda message: message.get("type") in {"ack", "note"}
    link.cut()
    link.restore()
    expect(connection(sam)).to_have_text("Connected", timeout=RECONNECT_MS)
    write_note(sam, "Stored before the reload", "Bug")
    expect(note_item(room.dana, "Stored before the reload")).to_be_visible()
    expect(pending_items(sam)).to_have_count(1)

    link.swallow = None
    sam.reload()

    # The page renders the stored note; the outbox's copy is recognised, not shown again.
    expect(connection(sam)).to_have_text("Connected", timeout=RECONNECT_MS)
    expect(note_items(sam)).to_have_count(1)
    expect(pending_items(sam)).to_have_count(0)
    assert_outbox_empty(sam)
    assert Note.objects.count() == 1
    room.assert_clean()


def test_notes_the_server_refuses_stay_on_the_page_with_the_reason(open_room):
    room = open_room()
    sam, link = room.sam, room.sam_link
    link.cut()
    write_note(sam, "First note that comes too late")
    write_note(sam, "Second note that comes too late")
    EnsembleSession.objects.filter(pk=room.session.pk).update(status="decided")
    link.restore()

    refused = notes_list(sam).locator(".note.refused")
    expect(refused).to_have_count(2, timeout=RECONNECT_MS)
    expect(refused.first).to_contain_text("Not sent: This session is closed")
    expect(refused.first).to_contain_text("First note that comes too late")
    expect(refused.nth(1)).to_contain_text("Second note that comes too late")
    assert_outbox_empty(sam)
    assert Note.objects.count() == 0

    refused.first.get_by_role("button", name="Dismiss").click()
    expect(refused).to_have_count(1)
    room.assert_clean()
