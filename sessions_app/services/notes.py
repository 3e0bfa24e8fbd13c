"""Notes in the live timeline: one path for every write, from the websocket or a form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from sessions_app.forms import NoteEditForm, NoteForm, client_id_validator
from sessions_app.live_fragments import note_payload
from sessions_app.models import EnsembleSession, Note
from sessions_app.services.timeline import (
    Guard,
    GuardFailed,
    broadcast,
    lock,
    next_revision,
    store_numbered,
)
from sessions_app.services.validation import InvalidInput, validated

# Notes are written while the session is live, and still accepted in review:
# a note typed offline just before the end must not be lost when it arrives.
OPEN_FOR_NOTES = (EnsembleSession.Status.LIVE, EnsembleSession.Status.REVIEW)


def post_note(
    *, session: EnsembleSession, author, data: Mapping[str, Any], guard: Guard | None = None
) -> tuple[Note, bool]:
    """Store a note once per client id. Returns the note and whether it is new:
    a resend of a note already stored gets the stored one back, unchanged, even
    if what it refers to has changed since (its goal deleted, the session ended).

    A resend is rare, so the stored note is looked up only when the write fails
    (on the client id's unique constraint, or on what changed since): every
    statement of a write is one the whole room waits behind.

    A `guard` is a condition the note is stored under (timeline.Guard): an
    insert it refuses, for whatever reason, stores nothing and raises
    GuardFailed (the caller checks why, then writes without it)."""
    try:
        return _store(session, author, data, guard), True
    except (InvalidInput, IntegrityError) as error:
        stored = _stored(session, author, data)
        if stored is not None:
            return stored, False
        if isinstance(error, InvalidInput):
            raise
        # Not a resend: the goal was deleted between the check and the commit.
        form = NoteForm(data, session=session)
        form.add_error("goal", "That goal was just removed; send the note again.")
        raise InvalidInput(form) from error


def _store(session: EnsembleSession, author, data: Mapping[str, Any], guard: Guard | None) -> Note:
    form = validated(NoteForm(data, session=session))
    note = form.instance  # Validation built it (see NoteForm).
    note.session = session
    note.author = author
    if not store_numbered(note, open_statuses=OPEN_FOR_NOTES, guard=guard):
        if guard is not None:
            raise GuardFailed
        status = EnsembleSession.objects.filter(pk=session.pk).values_list("status", flat=True)
        if not status:
            raise EnsembleSession.DoesNotExist(f"No session {session.pk}.")
        form.add_error(
            None,
            "Notes can be written once the session has started."
            if status[0] == EnsembleSession.Status.PLANNING
            else "This session is closed: it takes no more notes.",
        )
        raise InvalidInput(form)
    # Rendered once, for the broadcast and the author's acknowledgement.
    note.payload = note_payload(note)
    broadcast(session.pk, note.payload)
    return note


def _stored(session: EnsembleSession, author, data: Mapping[str, Any]) -> Note | None:
    client_id = data.get("client_id")
    if not isinstance(client_id, str):
        return None
    try:
        # Only a well-formed id is looked up (a NUL in it would fail the query
        # itself on PostgreSQL); a malformed one is the form's error to report.
        client_id_validator(client_id)
    except ValidationError:
        return None
    stored = Note.objects.filter(session=session, client_id=client_id).first()
    if stored is not None and stored.author_id != author.pk:
        # Client ids are random; one that is someone else's is a client bug,
        # and acknowledging it would silently drop this author's text.
        form = NoteForm(data, session=session)
        form.add_error("client_id", "This client id belongs to another note.")
        raise InvalidInput(form)
    return stored


def _own(note: Note, user) -> None:
    if note.author_id != user.pk:
        raise PermissionDenied("Only the note's author can change it.")


def edit_note(*, note: Note, editor, data: Mapping[str, Any]) -> Note:
    _own(note, editor)
    form = validated(NoteEditForm(data, instance=note))
    with transaction.atomic():
        locked = lock(note.session)
        note = form.save(commit=False)
        note.edited_at = timezone.now()
        note.revision = next_revision(locked)
        note.save(update_fields=["text", "edited_at", "revision"])
        broadcast(locked.pk, note_payload(note))
    return note


def delete_note(*, note: Note, by) -> None:
    """Deleted notes vanish for everyone; the row stays so clients learn of it."""
    _own(note, by)
    with transaction.atomic():
        locked = lock(note.session)
        note.deleted_at = timezone.now()
        note.revision = next_revision(locked)
        note.save(update_fields=["deleted_at", "revision"])
        broadcast(locked.pk, note_payload(note))
