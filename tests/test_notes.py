"""Notes: the one write path (numbered, idempotent, refused when invalid), the
plain-form fallback that uses it, and the live room page that shows them."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import DashboardLink, EnsembleSession, Event, Note
from sessions_app.services import live, notes
from sessions_app.services.validation import InvalidInput
from tests.factories import GoalFactory, MembershipFactory, SessionFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def live_session(session):
    session.status = EnsembleSession.Status.LIVE
    session.started_at = timezone.now()
    session.internal_tenant = "acme-internal"
    session.save()
    return session


def data(text: str = "Totals are off by one cent", **extra) -> dict:
    return {"client_id": uuid.uuid4().hex, "kind": "bug", "text": text, **extra}


def post(session, author, text: str = "A note", **extra) -> Note:
    note, _ = notes.post_note(session=session, author=author, data=data(text, **extra))
    return note


def counters(session) -> tuple[int, int]:
    session.refresh_from_db()
    return session.last_seq, session.revision


# --- The write path ---------------------------------------------------------------------


def test_notes_are_numbered_1_2_3_without_gaps(live_session, teammate, facilitator):
    written = [post(live_session, author) for author in (teammate, facilitator, teammate)]
    assert [note.seq for note in written] == [1, 2, 3]
    assert list(Note.objects.values_list("seq", flat=True)) == [1, 2, 3]
    assert counters(live_session) == (3, 3)


def test_a_deleted_note_keeps_its_seq_and_the_next_note_gets_a_new_one(live_session, teammate):
    first, second = post(live_session, teammate), post(live_session, teammate)
    notes.delete_note(note=second, by=teammate)
    third = post(live_session, teammate)
    assert third.seq == 3
    assert list(Note.objects.visible().values_list("seq", flat=True)) == [first.seq, third.seq]


def test_every_change_gets_the_next_revision(live_session, teammate, facilitator):
    one = post(live_session, teammate)
    two = post(live_session, facilitator)
    assert (one.revision, two.revision) == (1, 2)
    one.session = live_session
    notes.edit_note(note=one, editor=teammate, data={"text": "Edited"})
    notes.delete_note(note=two, by=facilitator)
    revisions = dict(Note.objects.values_list("text", "revision"))
    assert revisions == {"Edited": 3, "A note": 4}
    assert counters(live_session) == (2, 4)


def test_the_same_client_id_is_stored_once(live_session, teammate):
    payload = data("Sent twice")
    first, created = notes.post_note(session=live_session, author=teammate, data=payload)
    assert created
    again, created_again = notes.post_note(
        session=live_session, author=teammate, data={**payload, "text": "Changed"}
    )
    assert not created_again
    assert (again.pk, again.seq, again.text) == (first.pk, 1, "Sent twice")
    assert Note.objects.count() == 1
    assert counters(live_session) == (1, 1)


def test_a_client_id_is_unique_per_session_only(live_session, teammate, feature, facilitator):
    other = SessionFactory(feature=feature, facilitator=facilitator, status="live")
    payload = data()
    notes.post_note(session=live_session, author=teammate, data=payload)
    note, created = notes.post_note(session=other, author=teammate, data=payload)
    assert created and note.seq == 1


def test_a_note_arriving_after_the_end_is_still_kept(live_session, teammate, facilitator):
    """A note typed offline just before the end must not be lost when it arrives."""
    live.end_session(session=live_session, by=facilitator)
    note = post(live_session, teammate, "Typed on the train")
    assert note.seq == 1


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("planning", "Notes can be written once the session has started."),
        ("decided", "This session is closed: it takes no more notes."),
        ("cancelled", "This session is closed: it takes no more notes."),
    ],
)
def test_notes_are_refused_outside_the_live_session_and_its_review(
    status, reason, session, teammate
):
    session.status = status
    session.save()
    with pytest.raises(InvalidInput) as refused:
        post(session, teammate)
    assert reason in str(refused.value.form.errors)
    assert not Note.objects.exists()
    assert counters(session) == (0, 0)


def test_a_resend_is_acknowledged_even_once_notes_are_closed(live_session, teammate):
    payload = data("Stored just before the decision")
    stored, _ = notes.post_note(session=live_session, author=teammate, data=payload)
    EnsembleSession.objects.filter(pk=live_session.pk).update(status="decided")
    again, created = notes.post_note(session=live_session, author=teammate, data=payload)
    assert (again.pk, created) == (stored.pk, False)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"kind": "rant"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 4001}, "text"),
        ({"client_id": ""}, "client_id"),
        ({"client_id": "short"}, "client_id"),
        ({"client_id": "x" * 65}, "client_id"),
        ({"client_id": "../../etc"}, "client_id"),
        ({"goal": "999999"}, "goal"),
    ],
)
def test_invalid_notes_are_refused_and_nothing_is_stored(bad, field, live_session, teammate):
    with pytest.raises(InvalidInput) as refused:
        notes.post_note(session=live_session, author=teammate, data={**data(), **bad})
    assert field in refused.value.form.errors
    assert not Note.objects.exists()
    assert counters(live_session) == (0, 0)


def test_text_of_exactly_4000_characters_is_kept_whole(live_session, teammate):
    note = post(live_session, teammate, "é" * 4000)
    note.refresh_from_db()
    assert note.text == "é" * 4000


def test_a_goal_of_another_session_is_refused(live_session, teammate, feature, facilitator):
    elsewhere = GoalFactory(session=SessionFactory(feature=feature, facilitator=facilitator))
    with pytest.raises(InvalidInput) as refused:
        post(live_session, teammate, goal=str(elsewhere.pk))
    assert "goal" in refused.value.form.errors
    assert not Note.objects.exists()


def test_only_the_author_edits_or_deletes_a_note(live_session, teammate, facilitator):
    from django.core.exceptions import PermissionDenied

    note = post(live_session, teammate, "Sam's")
    with pytest.raises(PermissionDenied):
        notes.edit_note(note=note, editor=facilitator, data={"text": "Dana's now"})
    with pytest.raises(PermissionDenied):
        notes.delete_note(note=note, by=facilitator)
    note.refresh_from_db()
    assert (note.text, note.edited_at, note.deleted_at) == ("Sam's", None, None)
    assert counters(live_session) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_notes_posted_at_once_from_many_connections_get_distinct_gap_free_seqs():
    if connection.vendor == "sqlite":
        pytest.skip(
            "SQLite takes one writer at a time by itself; the row lock that numbers "
            "notes is exercised on PostgreSQL, which CI runs (set DATABASE_URL)."
        )
    session = SessionFactory(status="live")
    writers = 8
    per_writer = 6
    authors = []
    for i in range(writers):
        author = UserFactory(username=f"writer{i}")
        MembershipFactory(team=session.feature.team, user=author)
        authors.append(author)
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(author) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_writer):
                post(session, author, f"{author.username} #{i}")
        except BaseException as error:  # reported below, with the seqs
            failures.append(error)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=write, args=(author,)) for author in authors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures

    total = writers * per_writer
    rows = list(Note.objects.filter(session=session).values_list("seq", "revision"))
    assert sorted(seq for seq, _ in rows) == list(range(1, total + 1))
    assert sorted(revision for _, revision in rows) == list(range(1, total + 1))
    assert counters(session) == (total, total)
    # Each writer's own notes are numbered in the order it wrote them.
    for author in authors:
        texts = Note.objects.filter(author=author).order_by("seq").values_list("text", flat=True)
        assert list(texts) == [f"{author.username} #{i}" for i in range(per_writer)]


# --- The plain-form fallback: POST /sessions/<id>/notes/ --------------------------------


def note_url(session) -> str:
    return reverse("note_add", kwargs={"session_id": session.pk})


def test_the_plain_form_posts_a_note_and_goes_back_to_the_room(live_session, teammate_client):
    form = data("Posted without the live client")
    response = teammate_client.post(note_url(live_session), form, follow=True)
    assert response.redirect_chain == [
        (reverse("live_room", kwargs={"session_id": live_session.pk}), 302)
    ]
    page = response.content.decode()
    assert "Note added." in page
    assert "Posted without the live client" in page
    note = Note.objects.get()
    assert (note.seq, note.client_id, note.author.username) == (1, form["client_id"], "sam")


def test_the_plain_form_over_htmx_answers_204_and_the_socket_brings_the_note(
    live_session, teammate_client
):
    response = teammate_client.post(note_url(live_session), data(), **HTMX)
    assert response.status_code == 204
    assert Note.objects.count() == 1


def test_the_plain_form_sent_twice_stores_the_note_once(live_session, teammate_client):
    form = data("Double-clicked")
    teammate_client.post(note_url(live_session), form)
    teammate_client.post(note_url(live_session), form)
    assert Note.objects.count() == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"text": ""}, "Write the note before sending it."),
        ({"kind": "rant"}, "Select a valid choice. rant is not one of the available choices."),
        ({"text": "x" * 4001}, "Ensure this value has at most 4000 characters (it has 4001)."),
        ({"client_id": ""}, "This field is required."),
        ({"goal": "999999"}, "Select a valid choice."),
    ],
)
def test_the_plain_form_refuses_bad_input_with_400_and_a_message(
    bad, message, live_session, teammate_client
):
    response = teammate_client.post(note_url(live_session), {**data(), **bad})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Note.objects.exists()


def test_the_plain_form_keeps_the_typed_text_when_it_refuses_it(live_session, teammate_client):
    response = teammate_client.post(note_url(live_session), data("Typed with care", kind="rant"))
    assert response.status_code == 400
    assert ">Typed with care</textarea>" in response.content.decode()


def test_the_plain_form_refuses_notes_before_the_start(session, teammate_client):
    response = teammate_client.post(note_url(session), data())
    assert response.status_code == 400
    assert "Notes can be written once the session has started." in response.content.decode()
    assert not Note.objects.exists()


def test_the_plain_form_is_404_for_an_outsider_and_stores_nothing(live_session, outsider_client):
    response = outsider_client.post(note_url(live_session), data())
    assert response.status_code == 404
    assert not Note.objects.exists()


# --- The live room page ---------------------------------------------------------------------


def room_url(session) -> str:
    return reverse("live_room", kwargs={"session_id": session.pk})


def status_elements(html: str) -> int:
    return len(re.findall(r"""role=["']status["']""", html))


def test_the_live_room_shows_where_to_test_and_what_to_watch(live_session, teammate_client):
    DashboardLink.objects.create(
        session=live_session, label="Datadog", url="https://datadog.example/d/1", position=0
    )
    DashboardLink.objects.create(
        session=live_session, label="Sentry", url="https://sentry.example/issues", position=1
    )
    page = teammate_client.get(room_url(live_session)).content.decode()
    assert "Bulk invoice export" in page
    assert "<code>bulk-invoice-export</code>" in page
    assert "Internal tenant: <strong>acme-internal</strong>" in page
    assert re.search(r'<a href="https://datadog.example/d/1"[^>]*>Datadog</a>', page)
    assert re.search(r'<a href="https://sentry.example/issues"[^>]*>Sentry</a>', page)
    assert f'data-ws-path="/ws/sessions/{live_session.pk}/"' in page


def test_the_live_room_lists_notes_in_seq_order_without_the_deleted_ones(
    live_session, teammate, facilitator, teammate_client
):
    first = post(live_session, teammate, "First")
    gone = post(live_session, facilitator, "Deleted later")
    post(live_session, teammate, "Third")
    notes.delete_note(note=gone, by=facilitator)
    # Stored out of order on purpose: the page orders by seq, not by row.
    Note.objects.filter(pk=first.pk).update(seq=4)
    page = teammate_client.get(room_url(live_session)).content.decode()
    assert re.findall(r'<div role="listitem" class="note[^"]*" id="note-(\d+)"', page) == ["3", "4"]
    assert "Deleted later" not in page
    assert page.index("Third") < page.index("First")


def test_the_live_room_escapes_note_text(live_session, teammate, teammate_client):
    post(live_session, teammate, '<script>alert("x")</script><b>bold</b>')
    page = teammate_client.get(room_url(live_session)).content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold</b>" not in page


def test_the_live_room_has_exactly_one_status_element(live_session, teammate_client):
    page = teammate_client.get(room_url(live_session)).content.decode()
    assert status_elements(page) == 1
    assert re.search(r'<p role="status" id="connection"[^>]*>Offline</p>', page)


def test_the_live_room_has_one_status_element_even_after_a_plain_form_post(
    live_session, teammate_client
):
    """The connection status is *the* status of the page: a flash message must not
    be a second one (screen readers and `get_by_role("status")` find one)."""
    response = teammate_client.post(note_url(live_session), data(), follow=True)
    page = response.content.decode()
    assert "Note added." in page
    assert status_elements(page) == 1


def test_events_stand_in_the_timeline_between_the_notes_around_them(
    live_session, teammate, facilitator, teammate_client
):
    goal = GoalFactory(session=live_session, author=teammate, text="Export 500 invoices")
    post(live_session, teammate, "Before the goal was ticked")
    live.set_goal_status(goal=goal, by=teammate, data={"status": "problem"})
    post(live_session, teammate, "After the goal was ticked")
    live.end_session(session=live_session, by=facilitator)
    page = teammate_client.get(room_url(live_session)).content.decode()
    timeline = page[page.index('id="notes"') :]
    order = [
        "Before the goal was ticked",
        "sam marked “Export 500 invoices” as problem found",
        "After the goal was ticked",
        "dana ended the session",
    ]
    positions = [timeline.index(text) for text in order]
    assert positions == sorted(positions)
    # Events are in the timeline, but they are not items of the list of notes.
    assert timeline.count('<div class="event') == 2
    assert Event.objects.count() == 2


def test_a_client_id_of_someone_elses_note_is_refused_and_their_note_kept(
    live_session, facilitator, teammate
):
    note, _ = notes.post_note(
        session=live_session, author=facilitator, data=data(client_id="shared-id-1")
    )
    with pytest.raises(InvalidInput) as refused:
        notes.post_note(
            session=live_session, author=teammate, data=data("Mine", client_id="shared-id-1")
        )
    assert "belongs to another note" in str(refused.value.form.errors)
    assert list(Note.objects.values_list("author", "text")) == [(facilitator.pk, note.text)]


def test_a_resend_is_acknowledged_even_after_its_goal_was_deleted(live_session, teammate):
    """A lost acknowledgement, then the goal merged away: the resend must not be
    refused, or the client would give the text back and it would be stored twice."""
    goal = GoalFactory(session=live_session)
    payload = data("Covered it", goal=str(goal.pk))
    stored, _ = notes.post_note(session=live_session, author=teammate, data=payload)
    goal.delete()
    again, created = notes.post_note(session=live_session, author=teammate, data=payload)
    assert (again.pk, created) == (stored.pk, False)
    assert Note.objects.count() == 1
