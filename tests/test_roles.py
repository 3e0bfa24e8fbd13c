"""Roles: the facilitator gives each participant a role and sets the rotation."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from sessions_app.models import Participant
from tests.factories import MembershipFactory, ParticipantFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, session, participant=None) -> str:
    kwargs = {"session_id": session.pk}
    if participant is not None:
        kwargs["participant_id"] = participant.pk
    return reverse(name, kwargs=kwargs)


@pytest.fixture
def erin(team):
    user = UserFactory(username="erin")
    MembershipFactory(team=team, user=user)
    return user


def test_facilitator_adds_a_participant_with_a_role(session, teammate, facilitator_client):
    response = facilitator_client.post(
        url("participant_add", session), {"user": teammate.pk, "role": "driver"}, **HTMX
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="roles"')
    assert "sam joins as Driver." in response.content.decode()
    participant = Participant.objects.get(session=session)
    assert (participant.user, participant.role) == (teammate, "driver")


def test_a_second_driver_is_refused_with_a_clear_message(
    session, teammate, erin, facilitator_client
):
    ParticipantFactory(session=session, user=teammate, role="driver")
    response = facilitator_client.post(
        url("participant_add", session), {"user": erin.pk, "role": "driver"}, **HTMX
    )
    assert response.status_code == 422
    assert "sam is already the driver; give them another role first." in response.content.decode()
    assert not Participant.objects.filter(user=erin).exists()


def test_changing_someone_to_navigator_when_taken_is_refused(
    session, teammate, erin, facilitator_client
):
    ParticipantFactory(session=session, user=teammate, role="navigator")
    erin_part = ParticipantFactory(session=session, user=erin, role="observer")
    response = facilitator_client.post(
        url("participant_role", session, erin_part), {"role": "navigator"}, **HTMX
    )
    assert response.status_code == 422
    assert "sam is already the navigator" in response.content.decode()
    erin_part.refresh_from_db()
    assert erin_part.role == "observer"


def test_a_participant_keeps_their_own_single_role_when_saved_again(
    session, teammate, facilitator_client
):
    driver = ParticipantFactory(session=session, user=teammate, role="driver")
    response = facilitator_client.post(url("participant_role", session, driver), {"role": "driver"})
    assert response.status_code == 302
    driver.refresh_from_db()
    assert driver.role == "driver"


def test_facilitator_changes_a_role(session, teammate, facilitator_client):
    participant = ParticipantFactory(session=session, user=teammate, role="observer")
    facilitator_client.post(url("participant_role", session, participant), {"role": "log_watcher"})
    participant.refresh_from_db()
    assert participant.role == "log_watcher"


def test_unknown_role_is_refused(session, teammate, facilitator_client):
    response = facilitator_client.post(
        url("participant_add", session), {"user": teammate.pk, "role": "pilot"}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Participant.objects.exists()


def test_someone_outside_the_team_cannot_be_added(session, outsider, facilitator_client):
    response = facilitator_client.post(
        url("participant_add", session), {"user": outsider.pk, "role": "observer"}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Participant.objects.exists()


def test_nobody_is_added_twice(session, teammate, facilitator_client):
    ParticipantFactory(session=session, user=teammate)
    response = facilitator_client.post(
        url("participant_add", session), {"user": teammate.pk, "role": "observer"}
    )
    assert response.status_code == 400
    assert Participant.objects.count() == 1


def test_only_the_facilitator_assigns_roles(session, teammate, teammate_client):
    response = teammate_client.post(
        url("participant_add", session), {"user": teammate.pk, "role": "driver"}
    )
    assert response.status_code == 403
    assert not Participant.objects.exists()


def test_outsider_gets_404_on_roles(session, teammate, outsider_client):
    participant = ParticipantFactory(session=session, user=teammate)
    assert (
        outsider_client.post(url("participant_role", session, participant), {"role": "driver"})
    ).status_code == 404
    assert outsider_client.post(url("participant_remove", session, participant)).status_code == 404
    participant.refresh_from_db()
    assert participant.role == "observer"


def test_facilitator_removes_a_participant(session, teammate, facilitator_client):
    participant = ParticipantFactory(session=session, user=teammate)
    facilitator_client.post(url("participant_remove", session, participant))
    assert not Participant.objects.exists()


def test_rotation_order_moves_people_up_and_down(session, teammate, erin, facilitator_client):
    first = ParticipantFactory(session=session, user=teammate, rotation_position=0)
    second = ParticipantFactory(session=session, user=erin, rotation_position=1)
    facilitator_client.post(url("participant_move", session, second), {"direction": "up"})
    assert list(session.participants.all()) == [second, first]
    facilitator_client.post(url("participant_move", session, second), {"direction": "down"})
    assert list(session.participants.all()) == [first, second]
    # Moving the last one further down changes nothing.
    facilitator_client.post(url("participant_move", session, second), {"direction": "down"})
    assert list(session.participants.all()) == [first, second]


def test_new_participants_join_the_end_of_the_rotation(session, teammate, erin, facilitator_client):
    facilitator_client.post(url("participant_add", session), {"user": erin.pk, "role": "driver"})
    facilitator_client.post(
        url("participant_add", session), {"user": teammate.pk, "role": "navigator"}
    )
    assert [p.user for p in session.participants.all()] == [erin, teammate]


def test_facilitator_sets_and_clears_the_rotation(session, facilitator_client):
    facilitator_client.post(url("rotation", session), {"rotation_minutes": "10"})
    session.refresh_from_db()
    assert session.rotation_minutes == 10
    response = facilitator_client.post(url("rotation", session), {"rotation_minutes": ""}, **HTMX)
    assert "Roles do not rotate." in response.content.decode()
    session.refresh_from_db()
    assert session.rotation_minutes is None


@pytest.mark.parametrize("value", ["0", "-5", "abc", "121"])
def test_bad_rotation_is_refused(session, facilitator_client, value):
    response = facilitator_client.post(url("rotation", session), {"rotation_minutes": value})
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    session.refresh_from_db()
    assert session.rotation_minutes is None


def test_database_allows_one_driver_per_session(session, teammate, erin):
    ParticipantFactory(session=session, user=teammate, role="driver")
    with pytest.raises(IntegrityError), transaction.atomic():
        ParticipantFactory(session=session, user=erin, role="driver")
