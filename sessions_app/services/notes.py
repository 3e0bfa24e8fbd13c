"""Notes in the live timeline: one path for every write, from the websocket or a form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from sessions_app.forms import NoteEditForm, NoteForm
from sessions_app.live_fragments import note_payload
from sessions_app.models import EnsembleSession, Note
from sessions_app.services.timeline import broadcast, lock, next_revision
from sessions_app.services.validation import InvalidInput, validated

# Notes are written while the session is live, and still accepted in review:
# a note typed offline just before the end must not be lost when it arrives.
OPEN_FOR_NOTES = (EnsembleSession.Status.LIVE, EnsembleSession.Status.REVIEW)


def post_note(*, session: EnsembleSession, author, data: Mapping[str, Any]) -> tuple[Note, bool]:
    """Store a note once per client id. Returns the note and whether it is new:
    a resend of a note already stored gets the stored one back, unchanged."""
    form = validated(NoteForm(data, session=session))
    with transaction.atomic():
        locked = lock(session)
        stored = Note.objects.filter(
            session=locked, client_id=form.cleaned_data["client_id"]
        ).first()
        if stored is not None:
            if stored.author_id != author.pk:
                # Client ids are random; one that is someone else's is a client bug,
                # and acknowledging it would silently drop this author's text.
                form.add_error("client_id", "This client id belongs to another note.")
                raise InvalidInput(form)
            return stored, False
        if locked.status not in OPEN_FOR_NOTES:
            form.add_error(None, "Notes can be written once the session has started.")
            raise InvalidInput(form)
        locked.last_seq += 1
        EnsembleSession.objects.filter(pk=locked.pk).update(last_seq=locked.last_seq)
        note = form.save(commit=False)
        note.session = locked
        note.author = author
        note.seq = locked.last_seq
        note.revision = next_revision(locked)
        note.save()
        broadcast(locked.pk, note_payload(note))
    return note, True


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
