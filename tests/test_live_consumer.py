"""The live room's websocket protocol, as the live client and a buggy or hostile
client speak it: every message type, the replay after a revision, idempotent
notes, and every bad input refused on the socket without storing anything."""

from __future__ import annotations

import gc
import json
from collections import Counter

import pytest
from channels.db import database_sync_to_async

from sessions_app import consumers
from sessions_app.consumers import FORBIDDEN, RATE_BURST, RATE_PER_SECOND
from sessions_app.models import EnsembleSession, Event, Goal, Membership, Note
from sessions_app.services import goals, live, notes
from tests.factories import GoalFactory, SessionFactory
from tests.live_room import (
    Room,
    Sockets,
    close_code,
    make_room,
    messages_until_synced,
    new_client_id,
    next_message,
    note_message,
    still_open,
)

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


@pytest.fixture
async def room() -> Room:
    return await db(make_room)()


@pytest.fixture
async def connect():
    sockets = Sockets()
    yield sockets.connect
    await sockets.close_all()


def post(room: Room, user, text: str, **data) -> Note:
    note, _ = notes.post_note(
        session=room.session,
        author=user,
        data={"client_id": new_client_id(), "kind": "observation", "text": text, **data},
    )
    return note


def timeline(session_id) -> tuple:
    """Everything a write could change."""
    session = EnsembleSession.objects.get(pk=session_id)
    return (
        session.last_seq,
        session.revision,
        list(
            Note.objects.order_by("pk").values_list(
                "session_id", "seq", "text", "revision", "edited_at", "deleted_at"
            )
        ),
        Event.objects.count(),
    )


def stored_notes(session_id) -> list[tuple]:
    return list(
        Note.objects.filter(session_id=session_id)
        .order_by("seq")
        .values_list("seq", "client_id", "text", "author__username")
    )


# --- Every message type --------------------------------------------------------------


async def test_hello_since_zero_in_an_empty_room_sends_the_panels_then_synced(room, connect):
    ws = await connect(room, room.sam)
    await ws.send_json_to({"type": "hello", "since": 0})
    received = await messages_until_synced(ws)
    assert [m["type"] for m in received if m["type"] != "panel"] == ["synced"]
    assert {m["id"] for m in received if m["type"] == "panel"} >= {
        "live-state",
        "live-goals",
        "live-room",
    }
    assert received[-1]["revision"] == 0


async def test_a_note_is_acknowledged_to_its_author_and_broadcast_to_everyone_in_the_room(
    room, connect
):
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    message = note_message("Totals are off by one cent")
    await sam.send_json_to(message)

    got = [await next_message(sam), await next_message(sam)]
    ack = next(m for m in got if m["type"] == "ack")
    assert ack["client_id"] == message["client_id"]
    assert ack["note"]["seq"] == 1
    assert "Totals are off by one cent" in ack["note"]["html"]
    assert [m["type"] for m in got].count("note") == 1, "the author sees the broadcast too"

    seen = await next_message(dana)
    assert seen["type"] == "note"
    assert (seen["seq"], seen["client_id"], seen["deleted"]) == (1, message["client_id"], False)
    assert "Totals are off by one cent" in seen["html"]
    assert 'data-kind="bug"' in seen["html"]
    assert await db(stored_notes)(room.session_id) == [
        (1, message["client_id"], "Totals are off by one cent", "sam")
    ]


async def test_a_note_linked_to_a_goal_of_the_session_shows_the_goal(room, connect):
    goal = await db(Goal.objects.get)(session=room.session)
    sam = await connect(room, room.sam)
    await sam.send_json_to(note_message("Covered the big export", goal=goal.pk))
    ack = await next_message(sam, skip=("panel", "note"))
    assert "Export 500 invoices" in ack["note"]["html"]
    assert await db(Note.objects.values_list("goal_id", flat=True).get)() == goal.pk


async def test_an_edit_is_broadcast_with_the_new_text_marked_as_edited(room, connect):
    note = await db(post)(room, room.sam, "Export takes 3 s")
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    await sam.send_json_to({"type": "edit_note", "seq": note.seq, "text": "Export takes 30 s"})

    for ws in (sam, dana):
        seen = await next_message(ws)
        assert (seen["type"], seen["seq"], seen["deleted"]) == ("note", 1, False)
        assert seen["revision"] > note.revision
        assert "Export takes 30 s" in seen["html"]
        assert "(edited)" in seen["html"]
    stored = await db(Note.objects.get)(pk=note.pk)
    assert stored.text == "Export takes 30 s"
    assert stored.edited_at is not None


async def test_a_deletion_is_broadcast_as_a_tombstone_without_the_text(room, connect):
    note = await db(post)(room, room.sam, "Wrong tenant, ignore")
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    await sam.send_json_to({"type": "delete_note", "seq": note.seq})

    for ws in (sam, dana):
        seen = await next_message(ws)
        assert (seen["type"], seen["seq"], seen["deleted"]) == ("note", 1, True)
        assert "html" not in seen
    assert await db(Note.objects.filter(deleted_at__isnull=False).count)() == 1


async def test_ping_is_answered_with_pong_carrying_the_current_revision(room, connect):
    await db(post)(room, room.sam, "One")
    await db(post)(room, room.sam, "Two")
    ws = await connect(room, room.erin)
    await ws.send_json_to({"type": "ping"})
    pong = await next_message(ws)
    assert pong["type"] == "pong"
    assert pong["revision"] == 2
    assert pong["now"]


# --- Replay ----------------------------------------------------------------------------


async def test_hello_replays_exactly_what_changed_after_the_revision_then_synced(room, connect):
    def history():
        a = post(room, room.sam, "A: first")
        b = post(room, room.dana, "B: second")
        post(room, room.erin, "C: held already")
        since = EnsembleSession.objects.get(pk=room.session_id).revision
        d = post(room, room.sam, "D: missed")
        notes.delete_note(note=a, by=room.sam)
        live.set_goal_status(
            goal=Goal.objects.get(session=room.session), by=room.erin, data={"status": "covered"}
        )
        b.session = room.session
        notes.edit_note(note=b, editor=room.dana, data={"text": "B: second, edited"})
        return since, d

    since, missed = await db(history)()
    ws = await connect(room, room.sam)
    await ws.send_json_to({"type": "hello", "since": since})
    received = [m for m in await messages_until_synced(ws) if m["type"] != "panel"]

    assert [(m["type"], m.get("seq"), m["revision"]) for m in received] == [
        ("note", 1, since + 2),  # A, deleted
        ("note", 2, since + 4),  # B, edited
        ("note", 4, since + 1),  # D, new
        ("event", None, since + 3),  # the goal marked covered
        ("synced", None, since + 4),
    ]
    a, b, d, event, _ = received
    assert a["deleted"] is True and "html" not in a
    assert "B: second, edited" in b["html"] and "(edited)" in b["html"]
    assert d["client_id"] == missed.client_id and "D: missed" in d["html"]
    assert "erin marked “Export 500 invoices” as covered" in event["html"]
    assert not any("C: held already" in m.get("html", "") for m in received)


async def test_hello_since_zero_replays_every_note_in_seq_order(room, connect):
    for text in ("one", "two", "three"):
        await db(post)(room, room.sam, text)
    ws = await connect(room, room.erin)
    await ws.send_json_to({"type": "hello"})  # `since` defaults to 0
    received = [m for m in await messages_until_synced(ws) if m["type"] == "note"]
    assert [m["seq"] for m in received] == [1, 2, 3]


async def test_hello_since_the_current_revision_replays_no_note(room, connect):
    await db(post)(room, room.sam, "one")
    ws = await connect(room, room.erin)
    # Erin's arrival is announced to the room, her too: that panel is presence,
    # not the replay, and may come at any moment, so it is awaited first.
    assert (await next_message(ws, skip=()))["id"] == "live-room"
    await ws.send_json_to({"type": "hello", "since": 1})
    received = await messages_until_synced(ws)
    # Nothing changed since the page it holds: not even a panel to render again.
    assert [m["type"] for m in received] == ["synced"]


@pytest.mark.parametrize("since", [5, 2**63, 10**30], ids=["ahead", "past bigint", "huge"])
async def test_hello_from_a_revision_the_server_never_reached_replays_nothing(since, room, connect):
    await db(post)(room, room.sam, "one")
    ws = await connect(room, room.erin)
    await ws.send_json_to({"type": "hello", "since": since})
    received = await messages_until_synced(ws)
    assert {m["type"] for m in received} == {"panel", "synced"}
    assert received[-1]["revision"] == 1


# --- Idempotency ----------------------------------------------------------------------


async def test_the_same_client_id_twice_is_stored_once_and_acknowledged_twice_with_one_seq(
    room, connect
):
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    message = note_message("Sent twice after a lost ack")
    await sam.send_json_to(message)
    await sam.send_json_to(message)
    acks = [await next_message(sam, skip=("panel", "note")) for _ in range(2)]
    assert [(a["type"], a["client_id"], a["note"]["seq"]) for a in acks] == [
        ("ack", message["client_id"], 1),
        ("ack", message["client_id"], 1),
    ]
    assert len(await db(stored_notes)(room.session_id)) == 1

    # The others saw it once: the next note they see is the next seq.
    await sam.send_json_to(note_message("Another one"))
    assert [(await next_message(dana))["seq"] for _ in range(2)] == [1, 2]


async def test_a_resend_with_changed_text_keeps_the_note_as_first_stored(room, connect):
    sam = await connect(room, room.sam)
    message = note_message("Original text")
    await sam.send_json_to(message)
    await next_message(sam, skip=("panel", "note"))
    await sam.send_json_to({**message, "text": "Changed on resend"})
    ack = await next_message(sam, skip=("panel", "note"))
    assert ack["note"]["seq"] == 1 and "Original text" in ack["note"]["html"]
    assert [row[2] for row in await db(stored_notes)(room.session_id)] == ["Original text"]


# --- Bad input ----------------------------------------------------------------------------


def raw(text):
    return lambda ctx: ("text", text)


def message(build):
    # As a browser's JSON.stringify sends it: non-ASCII characters unescaped.
    return lambda ctx: ("text", json.dumps(build(ctx), ensure_ascii=False))


BAD_INPUT = [
    pytest.param(raw("{not json"), "not valid JSON", id="invalid JSON"),
    pytest.param(raw('["note"]'), "a JSON object with a type", id="a JSON array"),
    pytest.param(raw('"note"'), "a JSON object with a type", id="a JSON string"),
    pytest.param(raw("null"), "a JSON object with a type", id="JSON null"),
    pytest.param(message(lambda c: {"type": "shout"}), "Unknown message type", id="unknown type"),
    pytest.param(message(lambda c: {"text": "hi"}), "Unknown message type", id="no type"),
    pytest.param(
        message(lambda c: {"type": ["note"]}), "Unknown message type", id="a type that is a list"
    ),
    pytest.param(
        message(lambda c: {"type": {"note": 1}}),
        "Unknown message type",
        id="a type that is an object",
    ),
    pytest.param(
        message(lambda c: note_message(kind="rant")), "Select a valid choice", id="unknown kind"
    ),
    pytest.param(message(lambda c: note_message(kind=None)), "kind", id="no kind"),
    pytest.param(
        message(lambda c: note_message(text="")), "Write the note before sending it", id="empty"
    ),
    pytest.param(
        message(lambda c: note_message(text="  \n\t ")),
        "Write the note before sending it",
        id="only whitespace",
    ),
    pytest.param(
        message(lambda c: note_message(text=["a", "list"])),
        "Write the note before sending it",
        id="text that is a list",
    ),
    pytest.param(
        message(lambda c: note_message(text="x" * 4001)),
        "at most 4000 characters",
        id="text over 4000 characters",
    ),
    pytest.param(
        message(lambda c: note_message(goal=c["other_goal"])),
        "Select a valid choice",
        id="a goal of another session",
    ),
    pytest.param(
        message(lambda c: note_message(goal="first")),
        "Select a valid choice",
        id="a goal that is not an id",
    ),
    pytest.param(
        message(lambda c: note_message(goal="1\x00")),
        "Null characters are not allowed",
        id="a goal with a NUL in it",
    ),
    pytest.param(
        message(lambda c: note_message(client_id={"id": "abcdefgh12"})),
        "required",
        id="a client id that is an object",
    ),
    pytest.param(
        message(lambda c: note_message(client_id=["abcdefgh12"])),
        "required",
        id="a client id that is a list",
    ),
    pytest.param(
        message(lambda c: note_message(client_id=True)), "required", id="a client id that is true"
    ),
    pytest.param(
        message(lambda c: note_message(client_id=None)), "required", id="a client id that is null"
    ),
    pytest.param(
        message(lambda c: note_message(client_id="abc")), "client id", id="a too short client id"
    ),
    pytest.param(
        message(lambda c: note_message(client_id="has spaces and <b>")),
        "client id",
        id="a client id with odd characters",
    ),
    pytest.param(
        message(lambda c: note_message(client_id=1.5)),
        "client id",
        id="a client id that is a fraction",
    ),
    pytest.param(
        message(lambda c: {"type": "edit_note", "seq": c["sams_note"], "text": "Hijacked"}),
        "Only the note's author can change it",
        id="edit of someone else's note",
    ),
    pytest.param(
        message(lambda c: {"type": "delete_note", "seq": c["sams_note"]}),
        "Only the note's author can change it",
        id="delete of someone else's note",
    ),
    pytest.param(
        message(lambda c: {"type": "edit_note", "seq": 99, "text": "Nothing there"}),
        "no such note",
        id="edit of a missing seq",
    ),
    pytest.param(
        message(lambda c: {"type": "delete_note", "seq": 99}),
        "no such note",
        id="delete of a missing seq",
    ),
    pytest.param(
        message(lambda c: {"type": "edit_note", "seq": str(c["own_note"]), "text": "Changed"}),
        "no such note",
        id="edit with a seq that is text",
    ),
    pytest.param(
        message(lambda c: {"type": "edit_note", "seq": c["own_deleted_note"], "text": "Back"}),
        "no such note",
        id="edit of a deleted note",
    ),
    pytest.param(
        message(lambda c: {"type": "delete_note", "seq": c["own_deleted_note"]}),
        "no such note",
        id="delete of a deleted note",
    ),
    pytest.param(
        message(lambda c: {"type": "edit_note", "seq": c["own_note"], "text": ""}),
        "cannot be empty",
        id="edit to empty text",
    ),
    pytest.param(
        message(lambda c: {"type": "edit_note", "seq": c["own_note"], "text": "y" * 4001}),
        "at most 4000 characters",
        id="edit to text over 4000 characters",
    ),
    pytest.param(
        message(lambda c: {"type": "hello", "since": -1}), "hello needs `since`", id="since < 0"
    ),
    pytest.param(
        message(lambda c: {"type": "hello", "since": "3"}),
        "hello needs `since`",
        id="since as text",
    ),
    pytest.param(
        message(lambda c: {"type": "hello", "since": 1.5}),
        "hello needs `since`",
        id="since as a fraction",
    ),
    pytest.param(
        message(lambda c: {"type": "hello", "since": True}),
        "hello needs `since`",
        id="since as a boolean",
    ),
    pytest.param(
        message(lambda c: {"type": "hello", "since": None}),
        "hello needs `since`",
        id="since as null",
    ),
    pytest.param(
        message(lambda c: note_message(text="z" * 33_000)), "at most 32 KB", id="over 32 KB"
    ),
    pytest.param(
        message(lambda c: {"type": "ping", "padding": "€" * 11_000}),
        "at most 32 KB",
        id="over 32 KB of UTF-8 in fewer characters",
    ),
    pytest.param(lambda c: ("bytes", b'{"type": "ping"}'), "JSON text", id="a binary frame"),
]


@pytest.mark.parametrize(("bad", "expected"), BAD_INPUT)
async def test_bad_input_gets_an_error_stores_nothing_and_the_socket_stays_open(
    bad, expected, room, connect
):
    def setup():
        sams = post(room, room.sam, "Sam's note")
        own = post(room, room.erin, "Erin's note")
        gone = post(room, room.erin, "Erin's deleted note")
        notes.delete_note(note=gone, by=room.erin)
        elsewhere = SessionFactory(feature=room.session.feature, status="live")
        return {
            "sams_note": sams.seq,
            "own_note": own.seq,
            "own_deleted_note": gone.seq,
            "other_goal": GoalFactory(session=elsewhere).pk,
        }

    ctx = await db(setup)()
    before = await db(timeline)(room.session_id)
    dana = await connect(room, room.dana)
    erin = await connect(room, room.erin)

    kind, data = bad(ctx)
    await (erin.send_to(bytes_data=data) if kind == "bytes" else erin.send_to(text_data=data))
    error = await next_message(erin)
    assert error["type"] == "error"
    assert expected in error["message"] or expected in json.dumps(error.get("errors")), error

    assert await db(timeline)(room.session_id) == before
    await still_open(erin)
    # Nothing was broadcast either: what the others see next is the next real note.
    await erin.send_json_to(note_message("A good note"))
    seen = await next_message(dana)
    assert (seen["type"], seen["seq"]) == ("note", 4)


# After a check (a heartbeat), a note goes under the condition that the login
# still holds; a refused one is checked in full and then says why, the same.
CHECKED_BEFORE = pytest.mark.parametrize(
    "checked_before", [False, True], ids=["first-write", "after-a-check"]
)


@CHECKED_BEFORE
async def test_a_refused_note_says_which_note_so_the_client_can_give_the_text_back(
    checked_before, room, connect
):
    sam = await connect(room, room.sam)
    if checked_before:
        await still_open(sam)
    message = note_message(kind="rant")
    await sam.send_json_to(message)
    error = await next_message(sam)
    assert error["type"] == "error"
    assert error["client_id"] == message["client_id"]
    assert list(error["errors"]) == ["kind"]


@CHECKED_BEFORE
async def test_notes_are_refused_while_the_session_is_still_being_planned(checked_before, connect):
    room = await db(make_room)(status=EnsembleSession.Status.PLANNING)
    sam = await connect(room, room.sam)
    if checked_before:
        await still_open(sam)
    message = note_message("Too early")
    await sam.send_json_to(message)
    error = await next_message(sam)
    assert error["type"] == "error"
    assert error["message"] == "Notes can be written once the session has started."
    assert error["client_id"] == message["client_id"]
    assert await db(stored_notes)(room.session_id) == []
    await still_open(sam)


async def test_a_flood_beyond_the_rate_limit_gets_slow_down_errors_and_the_socket_survives(
    room, connect, monkeypatch
):
    elapsed = [0.0]
    real_clock = consumers.clock
    monkeypatch.setattr(consumers, "clock", lambda: real_clock() + elapsed[0])
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    # Cheap messages first, so the burst is spent before any time passes ...
    for _ in range(RATE_BURST):
        await sam.send_json_to({"type": "shout"})
    # ... then notes, which must not be stored while the bucket is empty.
    flood = [note_message(f"Flood {i}") for i in range(10)]
    for message in flood:
        await sam.send_json_to(message)

    replies = [await next_message(sam, skip=("panel", "note")) for _ in range(RATE_BURST + 10)]
    slow_down = [r for r in replies if "slow down" in r.get("message", "")]
    acked = [r["client_id"] for r in replies if r["type"] == "ack"]
    assert len(slow_down) >= 5, replies
    assert len(slow_down) + len(acked) + RATE_BURST == len(replies)
    assert {row[1] for row in await db(stored_notes)(room.session_id)} == set(acked)

    # The bucket refills with time: move the limit's clock on, and the same
    # connection works again.
    elapsed[0] += 3 / RATE_PER_SECOND
    await still_open(sam)
    await sam.send_json_to(note_message("After the flood"))
    ack = await next_message(sam, skip=("panel", "note"))
    assert ack["type"] == "ack"
    seen = [await next_message(dana) for _ in range(len(acked) + 1)]
    assert [m["seq"] for m in seen] == list(range(1, len(acked) + 2))


@CHECKED_BEFORE
async def test_a_member_removed_from_the_team_is_closed_with_4403_on_the_next_write(
    checked_before, room, connect
):
    sam = await connect(room, room.sam)
    if checked_before:
        # A heartbeat checks the login: later notes are stored on condition
        # that it still holds, without a check of their own.
        await still_open(sam)
    await db(Membership.objects.filter(user=room.sam).delete)()
    await sam.send_json_to(note_message("Written after removal"))
    assert await close_code(sam) == FORBIDDEN
    assert await db(stored_notes)(room.session_id) == []


@pytest.mark.parametrize(
    "note",
    [
        pytest.param({"text": ""}, id="empty"),
        pytest.param({"kind": "rumour"}, id="unknown-kind"),
        pytest.param({"client_id": "not a client id"}, id="bad-client-id"),
    ],
)
async def test_a_removed_member_hears_nothing_of_an_invalid_note_but_4403(note, room, connect):
    sam = await connect(room, room.sam)
    await still_open(sam)  # checked: later notes go under the login's condition
    await db(Membership.objects.filter(user=room.sam).delete)()
    await sam.send_json_to(note_message("Written after removal") | note)
    assert await close_code(sam) == FORBIDDEN
    assert await db(stored_notes)(room.session_id) == []


@pytest.mark.parametrize(
    "write",
    [
        pytest.param({"type": "edit_note", "seq": 1, "text": "Changed"}, id="edit"),
        pytest.param({"type": "delete_note", "seq": 1}, id="delete"),
    ],
)
async def test_a_removed_member_cannot_change_their_note(write, room, connect):
    await db(post)(room, room.sam, "Before removal")
    before = await db(timeline)(room.session_id)
    sam = await connect(room, room.sam)
    await db(Membership.objects.filter(user=room.sam).delete)()
    await sam.send_json_to(write)
    assert await close_code(sam) == FORBIDDEN
    assert await db(timeline)(room.session_id) == before


@pytest.mark.parametrize(
    "read",
    [
        pytest.param({"type": "hello", "since": 0}, id="hello"),
        pytest.param({"type": "ping"}, id="ping"),
    ],
)
async def test_a_removed_member_is_closed_with_4403_instead_of_reading_on(read, room, connect):
    await db(post)(room, room.dana, "Not for former members")
    sam = await connect(room, room.sam)
    await db(Membership.objects.filter(user=room.sam).delete)()
    await sam.send_json_to(read)
    # Only the room panel of their own arrival may come first; no note, no pong.
    while (output := await sam.receive_output(timeout=10))["type"] != "websocket.close":
        sent = json.loads(output["text"])
        assert (sent["type"], sent.get("id")) == ("panel", "live-room"), sent
    assert output["code"] == FORBIDDEN


async def test_html_in_a_note_is_escaped_in_what_is_broadcast(room, connect):
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    text = '<script>alert("x")</script><img src=x onerror=alert(1)> & <b>bold</b>'
    await sam.send_json_to(note_message(text))
    seen = await next_message(dana)
    assert "<script>" not in seen["html"]
    assert "<img" not in seen["html"] and "<b>" not in seen["html"]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in seen["html"]
    assert "&amp;" in seen["html"]
    ack = await next_message(sam, skip=("panel", "note"))
    assert "<script>" not in ack["note"]["html"]


async def test_html_in_an_edit_is_escaped_in_what_is_broadcast(room, connect):
    note = await db(post)(room, room.sam, "plain")
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    await sam.send_json_to({"type": "edit_note", "seq": note.seq, "text": "<i>now</i> html"})
    seen = await next_message(dana)
    assert "<i>" not in seen["html"]
    assert "&lt;i&gt;now&lt;/i&gt; html" in seen["html"]


# --- The server's watch over each connection, and replays -------------------------


async def test_a_removed_member_who_never_writes_is_closed_by_the_watch(room, connect, monkeypatch):
    # A hostile client need not ping: the server checks by itself.
    monkeypatch.setattr(consumers, "WATCH_SECONDS", 0.05)
    sam = await connect(room, room.sam)
    await db(Membership.objects.filter(user=room.sam).delete)()
    assert await close_code(sam) == FORBIDDEN


async def test_a_connection_that_falls_silent_is_closed_for_the_client_to_reconnect(
    room, connect, monkeypatch
):
    monkeypatch.setattr(consumers, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(consumers, "SILENCE_SECONDS", 0.1)
    sam = await connect(room, room.sam)
    assert await close_code(sam) == consumers.IDLE


async def test_replays_have_a_limit_of_their_own_that_leaves_notes_alone(room, connect):
    sam = await connect(room, room.sam)
    for _ in range(consumers.REPLAY_BURST + 1):
        await sam.send_json_to({"type": "hello", "since": 0})
    replies = [await next_message(sam) for _ in range(consumers.REPLAY_BURST + 1)]
    assert [r["type"] for r in replies].count("synced") == consumers.REPLAY_BURST
    refused = next(r for r in replies if r["type"] == "error")
    assert refused["retry"] is True
    await sam.send_json_to(note_message("Still welcome"))
    assert (await next_message(sam, skip=("panel", "note")))["type"] == "ack"


async def test_goals_changed_during_the_session_reach_the_live_room(room, connect):
    dana = await connect(room, room.dana)
    await db(goals.add_goal)(
        session=room.session,
        author=room.sam,
        data={"text": "Refunds appear in the export", "perspective": "support"},
    )
    panels = {}
    while set(panels) != {"live-goals", "note-goal"}:
        message = await next_message(dana, skip=())
        if message["type"] == "panel" and message["id"] in ("live-goals", "note-goal"):
            panels[message["id"]] = message["html"]
    assert "Refunds appear in the export" in panels["live-goals"]
    assert "Refunds appear in the export" in panels["note-goal"]


async def test_panels_carry_the_revision_they_were_rendered_at(room, connect):
    await db(post)(room, room.sam, "One")
    dana = await connect(room, room.dana)
    await dana.send_json_to({"type": "hello", "since": 0})
    panels = [m for m in await messages_until_synced(dana) if m["type"] == "panel"]
    assert {panel["revision"] for panel in panels} == {1}


@pytest.fixture
def test_connection_pid() -> int:
    """The test's own connection (the one that flushes the database after it)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("Cutting the app's database connections needs PostgreSQL, which CI runs.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def cut_app_connections(spare: int) -> int:
    """What a database restart or an operator's pg_terminate_backend does: every
    connection the app holds to this database is cut (from a connection of
    its own, so none of the app's survives)."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        return admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s)",
            [spare],
        ).fetchone()[0]


async def test_notes_are_stored_once_after_the_database_cut_every_connection(
    room, connect, test_connection_pid
):
    sam = await connect(room, room.sam)
    await sam.send_json_to(note_message("Written before the cut"))
    await next_message(sam, skip=("note", "panel"))
    assert await db(cut_app_connections)(test_connection_pid) >= 1

    message = note_message("Written after the cut")
    await sam.send_json_to(message)
    answer = await next_message(sam, skip=("note", "panel"))
    # A connection found cut is replaced; were one cut mid-write, the answer
    # would be an error to retry, and the client's resend would be acknowledged.
    if answer["type"] == "error":
        assert answer["retry"] is True and "client_id" not in answer, answer
        await sam.send_json_to(message)
        answer = await next_message(sam, skip=("note", "panel"))
    assert (answer["type"], answer["client_id"], answer["note"]["seq"]) == (
        "ack",
        message["client_id"],
        2,
    )
    assert [text for _, _, text, _ in await db(stored_notes)(room.session_id)] == [
        "Written before the cut",
        "Written after the cut",
    ]


# --- What a note leaves behind -------------------------------------------------------


async def test_notes_leave_no_reference_cycles_for_the_garbage_collector(room, connect):
    # Objects in a reference cycle wait for a collection, and a collection
    # pauses the whole process, every room in it: a busy room's notes must be
    # freed as they go (see NoteForm). The benchmark measures the pauses.
    goal = await db(Goal.objects.get)(session=room.session)
    dana = await connect(room, room.dana)
    sam = await connect(room, room.sam)
    for ws in (dana, sam):
        await ws.send_json_to({"type": "hello", "since": 0})
        await messages_until_synced(ws)

    async def a_note(**fields) -> None:
        await sam.send_json_to(note_message(**fields))
        assert {(await next_message(sam))["type"], (await next_message(sam))["type"]} == {
            "ack",
            "note",
        }
        assert (await next_message(dana))["type"] == "note"

    await a_note()  # what is made once, on first use, stays
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds, to look at
    try:
        for _ in range(5):
            await a_note()
            await a_note(goal=goal.pk, kind="question")
        gc.collect()
        # Only what notes are made of (forms, fields, models, queries): the
        # process's other work (the channel layer, a reconnect) is not this
        # test's to judge.
        left = Counter(
            type(found).__qualname__
            for found in gc.garbage
            if type(found).__module__.startswith(("django.", "sessions_app."))
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert not left, f"left in reference cycles: {dict(left)}"
