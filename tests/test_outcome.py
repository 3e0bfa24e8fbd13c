"""After the session: confidence votes, the decision and its revisions, follow-ups.
Services first (the rules), then the review page's forms that use them."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import ConfidenceVote, Decision, EnsembleSession, FollowUp, Participant
from sessions_app.services import outcome
from sessions_app.services.validation import InvalidInput
from tests.conftest import client_for
from tests.factories import MembershipFactory, ParticipantFactory, UserFactory

Status = EnsembleSession.Status


@pytest.fixture
def bystander(team):
    """In the team, but not a participant of the session."""
    user = UserFactory(username="kim")
    MembershipFactory(team=team, user=user)
    return user


@pytest.fixture
def in_review(session, facilitator, teammate):
    """Ended a minute ago; dana facilitated (and navigated), sam drove."""
    ParticipantFactory(session=session, user=facilitator, role=Participant.Role.NAVIGATOR)
    ParticipantFactory(session=session, user=teammate, role=Participant.Role.DRIVER)
    now = timezone.now()
    session.status = Status.REVIEW
    session.started_at = now - datetime.timedelta(hours=1)
    session.ended_at = now - datetime.timedelta(minutes=1)
    session.save()
    return session


def url(name: str, session, **kwargs) -> str:
    return reverse(name, kwargs={"session_id": session.pk, **kwargs})


def go(rationale: str = "Totals match the ledger", **extra) -> dict:
    return {"outcome": "go", "rationale": rationale, **extra}


def follow_up_data(owner, **changes) -> dict:
    data = {"text": "Fix the rounding of totals", "owner": owner.pk, "due": "2030-01-31"}
    return data | changes


def assert_refused(response, message: str) -> None:
    """The page comes back with the form and its error, and says what is wrong."""
    assert response.status_code == 400
    assert message in response.content.decode()


# --- Confidence votes -------------------------------------------------------------------


def test_a_participant_votes_once_and_can_change_their_vote(in_review, teammate):
    outcome.cast_vote(session=in_review, voter=teammate, data={"score": 2, "comment": "Slow"})
    outcome.cast_vote(session=in_review, voter=teammate, data={"score": 4, "comment": ""})

    assert list(ConfidenceVote.objects.values_list("voter__username", "score", "comment")) == [
        ("sam", 4, "")
    ]


def test_the_facilitator_votes_too(in_review, facilitator):
    outcome.cast_vote(session=in_review, voter=facilitator, data={"score": 5})

    assert ConfidenceVote.objects.get().voter == facilitator


def test_a_team_member_who_did_not_take_part_cannot_vote(in_review, bystander):
    response = client_for(bystander).post(url("review_vote", in_review), {"score": 3})

    assert response.status_code == 403
    assert not ConfidenceVote.objects.exists()


@pytest.mark.parametrize("status", [Status.PLANNING, Status.LIVE, Status.DECIDED])
def test_votes_are_only_given_in_review(in_review, teammate, status):
    EnsembleSession.objects.filter(pk=in_review.pk).update(status=status)

    response = client_for(teammate).post(url("review_vote", in_review), {"score": 3})

    assert_refused(response, "Votes are given after the session ends and before the decision.")
    assert not ConfidenceVote.objects.exists()


def test_a_vote_can_no_longer_change_once_decided(in_review, teammate, facilitator):
    outcome.cast_vote(session=in_review, voter=teammate, data={"score": 2})
    outcome.record_decision(session=in_review, by=facilitator, data=go())

    with pytest.raises(InvalidInput):
        outcome.cast_vote(session=in_review, voter=teammate, data={"score": 5})

    assert ConfidenceVote.objects.get().score == 2


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("", "Choose your confidence, from 1 to 5."),
        ("0", "Ensure this value is greater than or equal to 1."),
        ("6", "Ensure this value is less than or equal to 5."),
        ("lots", "Enter a whole number."),
    ],
)
def test_a_vote_outside_one_to_five_is_refused(in_review, teammate_client, score, message):
    response = teammate_client.post(url("review_vote", in_review), {"score": score})

    assert_refused(response, message)
    assert not ConfidenceVote.objects.exists()


def test_votes_stay_hidden_until_everyone_has_voted(in_review, teammate, facilitator):
    review_url = url("review", in_review)
    teammate_client = client_for(teammate)
    response = teammate_client.post(
        url("review_vote", in_review), {"score": 2, "comment": "Totals drift"}
    )
    assert response.status_code == 302

    page = teammate_client.get(review_url).content.decode()
    assert "1 of 2 have voted" in page
    assert "Voted so far: sam" in page
    assert "Fist-of-five votes" not in page
    assert "sam: 2" not in page
    assert not outcome.votes_visible(in_review)

    outcome.cast_vote(session=in_review, voter=facilitator, data={"score": 4})

    page = teammate_client.get(review_url).content.decode()
    assert "2 of 2 have voted" in page
    assert "Fist-of-five votes" in page
    assert "sam: 2 — Totals drift" in page
    assert "Average 3.0 of 5." in page


def test_only_the_facilitator_reveals_the_votes(in_review, teammate, facilitator):
    outcome.cast_vote(session=in_review, voter=teammate, data={"score": 3, "comment": "Unsure"})

    refused = client_for(teammate).post(url("review_reveal", in_review))
    assert refused.status_code == 403
    in_review.refresh_from_db()
    assert not in_review.votes_revealed
    assert "Reveal votes" not in client_for(teammate).get(url("review", in_review)).content.decode()

    revealed = client_for(facilitator).post(url("review_reveal", in_review))

    assert revealed.status_code == 302
    in_review.refresh_from_db()
    assert in_review.votes_revealed
    page = client_for(teammate).get(url("review", in_review)).content.decode()
    assert "sam: 3 — Unsure" in page


# --- The decision -----------------------------------------------------------------------


def test_the_facilitator_records_a_decision_and_the_session_is_decided(
    in_review, facilitator_client
):
    response = facilitator_client.post(url("review_decide", in_review), go(), follow=True)

    assert response.status_code == 200
    assert "Decision recorded: Go." in response.content.decode()
    decision = Decision.objects.get()
    assert (decision.outcome, decision.rationale, decision.decided_by.username) == (
        "go",
        "Totals match the ledger",
        "dana",
    )
    in_review.refresh_from_db()
    assert in_review.status == Status.DECIDED


def test_a_decision_by_someone_else_than_the_facilitator_is_forbidden(in_review, teammate_client):
    response = teammate_client.post(url("review_decide", in_review), go())

    assert response.status_code == 403
    assert not Decision.objects.exists()
    in_review.refresh_from_db()
    assert in_review.status == Status.REVIEW


def test_the_decision_form_is_only_shown_to_the_facilitator(in_review, teammate_client):
    page = teammate_client.get(url("review", in_review)).content.decode()

    assert "Record decision" not in page
    assert "Add follow-up" not in page


@pytest.mark.parametrize("status", [Status.PLANNING, Status.LIVE, Status.CANCELLED])
def test_no_decision_before_the_session_has_ended(in_review, facilitator_client, status):
    EnsembleSession.objects.filter(pk=in_review.pk).update(status=status)

    response = facilitator_client.post(url("review_decide", in_review), go())

    assert_refused(response, "A decision is recorded once the session has ended.")
    assert not Decision.objects.exists()
    in_review.refresh_from_db()
    assert in_review.status == status


@pytest.mark.parametrize("rationale", ["", "   "])
def test_a_decision_needs_a_rationale(in_review, facilitator_client, rationale):
    response = facilitator_client.post(url("review_decide", in_review), go(rationale))

    assert_refused(response, "Say why: the rationale is required.")
    assert not Decision.objects.exists()
    in_review.refresh_from_db()
    assert in_review.status == Status.REVIEW


def test_an_unknown_outcome_is_refused(in_review, facilitator_client):
    response = facilitator_client.post(
        url("review_decide", in_review), {"outcome": "maybe", "rationale": "Hm"}
    )

    assert_refused(response, "Select a valid choice.")
    assert not Decision.objects.exists()


def test_go_with_conditions_needs_a_follow_up(in_review, facilitator, facilitator_client):
    conditional = {"outcome": "go_with_conditions", "rationale": "Once rounding is fixed"}

    refused = facilitator_client.post(url("review_decide", in_review), conditional)

    assert_refused(refused, "“Go with conditions” needs at least one follow-up: add it first.")
    assert not Decision.objects.exists()

    outcome.add_follow_up(session=in_review, by=facilitator, data=follow_up_data(facilitator))
    accepted = facilitator_client.post(url("review_decide", in_review), conditional)

    assert accepted.status_code == 302
    assert Decision.objects.get().outcome == "go_with_conditions"


def test_a_second_decision_without_a_reason_is_refused(in_review, facilitator, facilitator_client):
    outcome.record_decision(session=in_review, by=facilitator, data=go())

    response = facilitator_client.post(
        url("review_decide", in_review),
        {"outcome": "no_go", "rationale": "Totals drift", "revision_reason": "  "},
    )

    assert_refused(response, "Revising a decision needs a reason.")
    assert list(Decision.objects.values_list("outcome", flat=True)) == ["go"]


def test_a_revision_keeps_the_history_and_shows_it(in_review, facilitator, facilitator_client):
    outcome.record_decision(session=in_review, by=facilitator, data=go("Looked fine"))

    response = facilitator_client.post(
        url("review_decide", in_review),
        {
            "outcome": "no_go",
            "rationale": "Totals drift by a cent",
            "revision_reason": "Finance found a rounding bug",
        },
    )

    assert response.status_code == 302
    assert list(
        Decision.objects.order_by("decided_at", "id").values_list(
            "outcome", "rationale", "revision_reason"
        )
    ) == [
        ("go", "Looked fine", ""),
        ("no_go", "Totals drift by a cent", "Finance found a rounding bug"),
    ]
    in_review.refresh_from_db()
    assert in_review.status == Status.DECIDED
    page = facilitator_client.get(url("review", in_review)).content.decode()
    latest, history = page.split("Earlier decisions")
    assert "<strong>No-go</strong>" in latest
    assert "revised because: Finance found a rounding bug" in latest
    assert "<strong>Go</strong> — Looked fine" in history


def test_record_decision_refuses_a_teammate_in_the_service_too(in_review, teammate):
    with pytest.raises(PermissionDenied):
        outcome.record_decision(session=in_review, by=teammate, data=go())

    assert not Decision.objects.exists()


# --- Follow-ups -------------------------------------------------------------------------


def test_the_facilitator_adds_a_follow_up(in_review, teammate, facilitator_client):
    response = facilitator_client.post(
        url("follow_up_add", in_review),
        follow_up_data(teammate, tracker_url="https://tracker.example/INV-42"),
    )

    assert response.status_code == 302
    item = FollowUp.objects.get()
    assert (item.text, item.owner, item.due, item.tracker_url, item.done) == (
        "Fix the rounding of totals",
        teammate,
        datetime.date(2030, 1, 31),
        "https://tracker.example/INV-42",
        False,
    )


def test_a_teammate_cannot_add_a_follow_up(in_review, teammate, teammate_client):
    response = teammate_client.post(url("follow_up_add", in_review), follow_up_data(teammate))

    assert response.status_code == 403
    assert not FollowUp.objects.exists()


def test_a_follow_up_owner_must_be_in_the_team(in_review, outsider, facilitator_client):
    response = facilitator_client.post(url("follow_up_add", in_review), follow_up_data(outsider))

    assert_refused(response, "Select a valid choice.")
    assert not FollowUp.objects.exists()


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)",
        "JavaScript://example.com/%0Aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://tracker.example/INV-42",
    ],
)
def test_a_tracker_link_must_be_http(in_review, teammate, facilitator_client, link):
    response = facilitator_client.post(
        url("follow_up_add", in_review), follow_up_data(teammate, tracker_url=link)
    )

    assert_refused(response, "Enter a valid URL.")
    assert not FollowUp.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text", "", "This field is required."),
        ("owner", "", "This field is required."),
        ("due", "31/01/2030x", "Enter a valid date."),
    ],
)
def test_bad_follow_up_input_is_refused(
    in_review, teammate, facilitator_client, field, value, message
):
    response = facilitator_client.post(
        url("follow_up_add", in_review), follow_up_data(teammate) | {field: value}
    )

    assert_refused(response, message)
    assert not FollowUp.objects.exists()


def test_anyone_in_the_team_marks_a_follow_up_done_and_not_done(in_review, facilitator, bystander):
    item = outcome.add_follow_up(
        session=in_review, by=facilitator, data=follow_up_data(facilitator)
    )
    done_url = url("follow_up_done", in_review, follow_up_id=item.pk)
    client = client_for(bystander)

    assert client.post(done_url, {"done": "1"}).status_code == 302
    item.refresh_from_db()
    assert item.done
    assert item.done_at is not None

    assert client.post(done_url, {"done": "0"}).status_code == 302
    item.refresh_from_db()
    assert (item.done, item.done_at) == (False, None)


def test_an_outsider_cannot_mark_a_follow_up_done(in_review, facilitator, outsider_client):
    item = outcome.add_follow_up(
        session=in_review, by=facilitator, data=follow_up_data(facilitator)
    )

    response = outsider_client.post(
        url("follow_up_done", in_review, follow_up_id=item.pk), {"done": "1"}
    )

    assert response.status_code == 404
    item.refresh_from_db()
    assert not item.done


def test_a_follow_up_of_another_session_is_not_found_here(
    in_review, feature, facilitator, facilitator_client
):
    other = EnsembleSession.objects.create(
        feature=feature, title="Another", internal_tenant="internal", facilitator=facilitator
    )
    item = outcome.add_follow_up(session=other, by=facilitator, data=follow_up_data(facilitator))

    response = facilitator_client.post(
        url("follow_up_done", in_review, follow_up_id=item.pk), {"done": "1"}
    )

    assert response.status_code == 404
    item.refresh_from_db()
    assert not item.done
