"""After the session: the review page, its forms (votes, decision, follow-ups)
and the exports. Plain forms that post and come back to the page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from uuid import UUID

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from sessions_app import exports, review
from sessions_app.forms import ConfidenceVoteForm, DecisionForm, FollowUpForm
from sessions_app.models import ConfidenceVote, EnsembleSession, FollowUp
from sessions_app.permissions import can_facilitate, session_for
from sessions_app.services import outcome
from sessions_app.services.validation import InvalidInput


def _page(request: HttpRequest, session: EnsembleSession, status: int = 200, **forms):
    mine = ConfidenceVote.objects.filter(session=session, voter=request.user).first()
    context = {
        "report": review.build(session),
        "session": session,
        "can_facilitate": can_facilitate(request.user, session),
        "can_vote": request.user.pk in outcome.voters(session),
        "my_vote": mine,
        "vote_form": forms.get("vote_form") or ConfidenceVoteForm(instance=mine),
        "decision_form": forms.get("decision_form") or DecisionForm(session=session),
        "follow_up_form": forms.get("follow_up_form") or FollowUpForm(session=session),
    }
    return render(request, "sessions_app/review.html", context, status=status)


def _back(session: EnsembleSession, anchor: str) -> HttpResponse:
    return redirect(reverse("review", kwargs={"session_id": session.pk}) + f"#{anchor}")


@login_required
def review_page(request: HttpRequest, session_id: UUID) -> HttpResponse:
    return _page(request, session_for(request.user, session_id))


@login_required
@require_POST
def vote(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    try:
        outcome.cast_vote(session=session, voter=request.user, data=request.POST)
    except InvalidInput as invalid:
        return _page(request, session, status=400, vote_form=invalid.form)
    messages.success(request, "Your confidence vote is in; you can change it until the decision.")
    return _back(session, "confidence")


@login_required
@require_POST
def reveal(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    outcome.reveal_votes(session=session, by=request.user)
    return _back(session, "confidence")


@login_required
@require_POST
def decide(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    try:
        decision = outcome.record_decision(session=session, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        return _page(request, session, status=400, decision_form=invalid.form)
    messages.success(request, f"Decision recorded: {decision.get_outcome_display()}.")
    return _back(session, "decision")


@login_required
@require_POST
def follow_up_add(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    try:
        outcome.add_follow_up(session=session, by=request.user, data=request.POST)
    except InvalidInput as invalid:
        return _page(request, session, status=400, follow_up_form=invalid.form)
    messages.success(request, "Follow-up added.")
    return _back(session, "follow-ups")


@login_required
@require_POST
def follow_up_done(request: HttpRequest, session_id: UUID, follow_up_id: int) -> HttpResponse:
    session = session_for(request.user, session_id)
    follow_up = get_object_or_404(FollowUp, pk=follow_up_id, session=session)
    outcome.set_follow_up_done(
        follow_up=follow_up, by=request.user, done=request.POST.get("done") == "1"
    )
    return _back(session, "follow-ups")


# --- Exports ------------------------------------------------------------------


def _download(request, chunks: Iterator[str], content_type: str, session, ext: str):
    response = StreamingHttpResponse(_served(request, chunks), content_type=content_type)
    name = f"ensemble-session-{session.pk}.{ext}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _served(request, chunks: Iterator[str]) -> Iterator[str] | AsyncIterator[str]:
    """The chunks as the server consumes them without holding them all:
    an ASGI server (daphne) takes an async iterator, and Django would gather a
    sync one whole before sending it; a WSGI server takes a sync one. Each
    chunk reads the database, so under ASGI it is made in a worker thread."""
    if not isinstance(request, ASGIRequest):
        return chunks

    async def each() -> AsyncIterator[str]:
        advance = sync_to_async(next)
        while (chunk := await advance(chunks, None)) is not None:
            yield chunk

    return each()


@login_required
def export_json(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    chunks = exports.json_chunks(session)
    return _download(request, chunks, "application/json; charset=utf-8", session, "json")


@login_required
def export_md(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    chunks = exports.markdown_chunks(session)
    return _download(request, chunks, "text/markdown; charset=utf-8", session, "md")


@login_required
def export_csv(request: HttpRequest, session_id: UUID) -> HttpResponse:
    session = session_for(request.user, session_id)
    chunks = exports.csv_chunks(session)
    return _download(request, chunks, "text/csv; charset=utf-8", session, "csv")
