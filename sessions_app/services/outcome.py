"""After the session: confidence votes, the decision (and its revisions), follow-ups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from sessions_app.forms import ConfidenceVoteForm, DecisionForm, FollowUpForm
from sessions_app.models import ConfidenceVote, Decision, EnsembleSession, FollowUp
from sessions_app.permissions import require_facilitator
from sessions_app.services import rollout, webhooks
from sessions_app.services.live import broadcast_panels
from sessions_app.services.timeline import lock
from sessions_app.services.validation import InvalidInput, validated

Status = EnsembleSession.Status


def voters(session: EnsembleSession) -> set[int]:
    """Who gives a confidence vote: the participants and the facilitator."""
    return set(session.participants.values_list("user_id", flat=True)) | {session.facilitator_id}


def votes_visible(session: EnsembleSession) -> bool:
    """Votes show once everyone has voted, or when the facilitator reveals them,
    so that nobody anchors on the first numbers."""
    if session.votes_revealed:
        return True
    voted = set(session.confidence_votes.values_list("voter_id", flat=True))
    return voters(session) <= voted


def cast_vote(*, session: EnsembleSession, voter, data: Mapping[str, Any]) -> ConfidenceVote:
    """Give or change one's vote, while the session is in review (until the decision)."""
    if voter.pk not in voters(session):
        raise PermissionDenied("Only the session's participants give a confidence vote.")
    existing = ConfidenceVote.objects.filter(session=session, voter=voter).first()
    form = validated(ConfidenceVoteForm(data, instance=existing))
    if session.status != Status.REVIEW:
        form.add_error(None, "Votes are given after the session ends and before the decision.")
        raise InvalidInput(form)
    vote = form.save(commit=False)
    vote.session = session
    vote.voter = voter
    try:
        with transaction.atomic():
            vote.save()
    except IntegrityError:
        # A double submit raced its first vote: the later one stands.
        ConfidenceVote.objects.filter(session=session, voter=voter).update(
            score=vote.score, comment=vote.comment
        )
        vote = ConfidenceVote.objects.get(session=session, voter=voter)
    return vote


def reveal_votes(*, session: EnsembleSession, by) -> None:
    require_facilitator(by, session)
    session.votes_revealed = True
    session.save(update_fields=["votes_revealed"])


def record_decision(*, session: EnsembleSession, by, data: Mapping[str, Any]) -> Decision:
    """The facilitator records go / go with conditions / no-go. The session is then
    decided; a later decision is a revision, which needs its reason."""
    require_facilitator(by, session)
    with transaction.atomic():
        locked = lock(session)
        form = validated(DecisionForm(data, session=locked))
        if locked.status not in (Status.REVIEW, Status.DECIDED):
            form.add_error(None, "A decision is recorded once the session has ended.")
            raise InvalidInput(form)
        decision = form.save(commit=False)
        decision.session = locked
        decision.decided_by = by
        decision.save()
        webhooks.queue(
            team=locked.feature.team,
            event="decision.recorded",
            payload={
                "feature": {"name": locked.feature.name, "flag_key": locked.feature.flag_key},
                "session": {"id": str(locked.pk), "title": locked.title},
                "decision": {
                    "outcome": decision.outcome,
                    "rationale": decision.rationale,
                    "revision_reason": decision.revision_reason,
                    "decided_by": by.get_username(),
                    "decided_at": decision.decided_at.isoformat(),
                },
            },
        )
        if decision.outcome == Decision.Outcome.NO_GO:
            rollout.pause_for_no_go(session=locked, decision=decision, by=by)
        if locked.status != Status.DECIDED:
            locked.status = Status.DECIDED
            locked.save(update_fields=["status"])
            broadcast_panels(locked, "live-state")
    session.status = locked.status
    return decision


def add_follow_up(*, session: EnsembleSession, by, data: Mapping[str, Any]) -> FollowUp:
    require_facilitator(by, session)
    follow_up = validated(FollowUpForm(data, session=session)).save(commit=False)
    follow_up.session = session
    follow_up.save()
    return follow_up


def set_follow_up_done(*, follow_up: FollowUp, by, done: bool) -> FollowUp:
    """Anyone in the team marks a follow-up done (or not done after all)."""
    follow_up.done = done
    follow_up.done_at = timezone.now() if done else None
    follow_up.save(update_fields=["done", "done_at"])
    return follow_up
