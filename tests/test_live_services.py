"""Running the live session: start and end, goals ticked off, roles handed over
and their timer, and who is in the room now."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from sessions_app import consumers
from sessions_app.handover import next_handover
from sessions_app.live_fragments import PRESENCE_TIMEOUT, event_payload
from sessions_app.models import EnsembleSession, Event, Goal, Participant, Presence
from sessions_app.services import live, roles
from sessions_app.services.validation import InvalidInput
from tests.factories import (
    GoalFactory,
    MembershipFactory,
    ParticipantFactory,
    SessionFactory,
    UserFactory,
)
from tests.live_room import (
    Room,
    Sockets,
    make_room,
    next_message,
    presence_in,
)

User = get_user_model()
Role = Participant.Role
Status = EnsembleSession.Status
HTMX = {"HTTP_HX_REQUEST": "true"}
db = database_sync_to_async


def url(name: str, session, **kwargs) -> str:
    return reverse(name, kwargs={"session_id": session.pk, **kwargs})


def set_status(session, status: str, **fields) -> EnsembleSession:
    for key, value in {"status": status, **fields}.items():
        setattr(session, key, value)
    session.save()
    return session


@pytest.fixture
def live_session(session):
    return set_status(session, Status.LIVE, started_at=timezone.now())


def events(session) -> list[tuple[str, str]]:
    return list(
        Event.objects.filter(session=session).order_by("revision").values_list("kind", "summary")
    )


def member(team, username: str):
    user = UserFactory(username=username)
    MembershipFactory(team=team, user=user)
    return user


def cast(session, *people: tuple[str, str]) -> dict[str, Participant]:
    """Participants in rotation order, by (username, role)."""
    cast_ = {}
    for position, (username, role) in enumerate(people):
        cast_[username] = ParticipantFactory(
            session=session,
            user=member(session.feature.team, username),
            role=role,
            rotation_position=position,
        )
    return cast_


def roles_of(session) -> dict[str, str]:
    return dict(Participant.objects.filter(session=session).values_list("user__username", "role"))


# --- Start and end ---------------------------------------------------------------------------


def test_the_facilitator_starts_the_session_which_is_stamped_and_logged(session, facilitator):
    before = timezone.now()
    live.start_session(session=session, by=facilitator)
    session.refresh_from_db()
    assert session.status == Status.LIVE
    assert before <= session.started_at <= timezone.now()
    assert events(session) == [(Event.Kind.STARTED, "dana started the session")]
    assert session.revision == 1


def test_starting_sets_the_first_handover_one_rotation_after_the_start(session, facilitator):
    set_status(session, Status.PLANNING, rotation_minutes=15)
    live.start_session(session=session, by=facilitator)
    session.refresh_from_db()
    assert session.rotation_due_at == session.started_at + timedelta(minutes=15)


def test_a_facilitator_who_is_not_an_owner_starts_and_ends_their_session(session, teammate):
    set_status(session, Status.PLANNING, facilitator=teammate)
    live.start_session(session=session, by=teammate)
    live.end_session(session=session, by=teammate)
    session.refresh_from_db()
    assert session.status == Status.REVIEW


@pytest.mark.parametrize("action", [live.start_session, live.end_session])
def test_only_the_facilitator_starts_or_ends_the_session(action, session, teammate):
    if action is live.end_session:
        set_status(session, Status.LIVE, started_at=timezone.now())
    status = session.status
    with pytest.raises(PermissionDenied):
        action(session=session, by=teammate)
    session.refresh_from_db()
    assert (session.status, session.ended_at, events(session)) == (status, None, [])


@pytest.mark.parametrize("status", [Status.LIVE, Status.REVIEW, Status.DECIDED, Status.CANCELLED])
def test_only_a_session_being_planned_can_start(status, session, facilitator):
    set_status(session, status)
    with pytest.raises(PermissionDenied):
        live.start_session(session=session, by=facilitator)
    session.refresh_from_db()
    assert (session.status, session.started_at, events(session)) == (status, None, [])


def test_the_facilitator_ends_a_live_session_into_review_stamped_and_logged(
    live_session, facilitator
):
    set_status(live_session, Status.LIVE, rotation_minutes=10, rotation_paused_seconds=30)
    before = timezone.now()
    live.end_session(session=live_session, by=facilitator)
    live_session.refresh_from_db()
    assert live_session.status == Status.REVIEW
    assert before <= live_session.ended_at <= timezone.now()
    assert (live_session.rotation_due_at, live_session.rotation_paused_seconds) == (None, None)
    assert events(live_session) == [(Event.Kind.ENDED, "dana ended the session")]


@pytest.mark.parametrize(
    "status", [Status.PLANNING, Status.REVIEW, Status.DECIDED, Status.CANCELLED]
)
def test_only_a_live_session_can_end(status, session, facilitator):
    set_status(session, status)
    with pytest.raises(PermissionDenied):
        live.end_session(session=session, by=facilitator)
    session.refresh_from_db()
    assert (session.status, session.ended_at, events(session)) == (status, None, [])


def test_start_and_end_buttons_work_without_javascript(session, facilitator_client):
    response = facilitator_client.post(url("live_start", session), follow=True)
    assert "The session is live." in response.content.decode()
    assert "End session" in response.content.decode()
    response = facilitator_client.post(url("live_end", session), follow=True)
    assert "The session has ended; it is now in review." in response.content.decode()
    session.refresh_from_db()
    assert session.status == Status.REVIEW


def test_start_over_htmx_answers_204(session, facilitator_client):
    response = facilitator_client.post(url("live_start", session), **HTMX)
    assert response.status_code == 204
    session.refresh_from_db()
    assert session.status == Status.LIVE


def test_a_teammate_pressing_start_is_refused_with_403(session, teammate_client):
    response = teammate_client.post(url("live_start", session))
    assert response.status_code == 403
    session.refresh_from_db()
    assert session.status == Status.PLANNING


# --- Goals, live -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "said"),
    [("covered", "covered"), ("problem", "problem found"), ("skipped", "skipped")],
)
def test_any_member_marks_a_goal_and_it_is_logged(status, said, live_session, teammate):
    goal = GoalFactory(session=live_session, author=teammate, text="Export 500 invoices")
    live.set_goal_status(goal=goal, by=teammate, data={"status": status})
    goal.refresh_from_db()
    assert goal.status == status
    assert events(live_session) == [
        (Event.Kind.GOAL_STATUS, f"sam marked “Export 500 invoices” as {said}")
    ]


def test_html_in_a_goal_is_escaped_in_the_log_entry(live_session, teammate):
    goal = GoalFactory(session=live_session, author=teammate, text="<img src=x onerror=alert(1)>")
    live.set_goal_status(goal=goal, by=teammate, data={"status": "covered"})
    html = event_payload(Event.objects.get())["html"]
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_marking_a_goal_with_its_current_status_logs_nothing_more(live_session, teammate):
    goal = GoalFactory(session=live_session, author=teammate)
    live.set_goal_status(goal=goal, by=teammate, data={"status": "covered"})
    live.set_goal_status(goal=goal, by=teammate, data={"status": "covered"})
    assert len(events(live_session)) == 1


def test_a_goal_can_be_opened_again(live_session, teammate):
    goal = GoalFactory(session=live_session, author=teammate, text="G")
    live.set_goal_status(goal=goal, by=teammate, data={"status": "skipped"})
    live.set_goal_status(goal=goal, by=teammate, data={"status": "open"})
    goal.refresh_from_db()
    assert goal.status == Goal.Status.OPEN
    assert [summary for _, summary in events(live_session)][-1] == "sam marked “G” as open"


def test_an_unknown_goal_status_is_refused(live_session, teammate):
    goal = GoalFactory(session=live_session, author=teammate)
    with pytest.raises(InvalidInput):
        live.set_goal_status(goal=goal, by=teammate, data={"status": "done-ish"})
    goal.refresh_from_db()
    assert (goal.status, events(live_session)) == (Goal.Status.OPEN, [])


def test_goals_are_ticked_off_only_once_the_session_started(session, teammate):
    goal = GoalFactory(session=session, author=teammate)
    with pytest.raises(PermissionDenied):
        live.set_goal_status(goal=goal, by=teammate, data={"status": "covered"})
    goal.refresh_from_db()
    assert goal.status == Goal.Status.OPEN


def test_the_goal_buttons_answer_with_the_updated_goals_panel(live_session, teammate, client):
    goal = GoalFactory(session=live_session, author=teammate, must_cover=True)
    client.force_login(teammate)
    response = client.post(
        url("live_goal_status", live_session, goal_id=goal.pk), {"status": "covered"}, **HTMX
    )
    assert response.status_code == 200
    panel = response.content.decode()
    assert panel.lstrip().startswith('<section id="live-goals">')
    assert f'id="goal-{goal.pk}-covered"' in panel
    pressed = panel[panel.index(f'id="goal-{goal.pk}-covered"') :].split(">", 1)[0]
    assert 'aria-pressed="true"' in pressed
    assert "Must-cover covered: 1 of 1" in panel


@pytest.mark.parametrize(
    ("status", "data", "expected"),
    [(Status.LIVE, {"status": "nope"}, 422), (Status.PLANNING, {"status": "covered"}, 403)],
)
def test_the_goal_buttons_refuse_what_cannot_be_set(
    status, data, expected, session, teammate, teammate_client
):
    set_status(session, status)
    goal = GoalFactory(session=session, author=teammate)
    response = teammate_client.post(url("live_goal_status", session, goal_id=goal.pk), data)
    assert response.status_code == expected
    goal.refresh_from_db()
    assert goal.status == Goal.Status.OPEN


def test_a_goal_of_another_session_cannot_be_marked_through_this_one(
    live_session, feature, facilitator, teammate, teammate_client
):
    other = GoalFactory(session=SessionFactory(feature=feature, facilitator=facilitator))
    response = teammate_client.post(
        url("live_goal_status", live_session, goal_id=other.pk), {"status": "covered"}
    )
    assert response.status_code == 404


# --- Handover: who drives and navigates next (pure) --------------------------------------------


def lineup(*roles_: str) -> list[Participant]:
    """Unsaved participants a, b, c… in rotation order with these roles."""
    return [
        Participant(pk=index + 1, role=role, user=User(username="abcde"[index]))
        for index, role in enumerate(roles_)
    ]


def after_handover(order: list[Participant]) -> str:
    handover = next_handover(order)
    changed = handover.roles
    return " ".join(f"{p.user.username}:{changed.get(p.pk, p.role)}" for p in order)


DR, NV, NT, OB, LW = Role.DRIVER, Role.NAVIGATOR, Role.NOTE_TAKER, Role.OBSERVER, Role.LOG_WATCHER


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Two people swap.
        ((DR, NV), "a:navigator b:driver"),
        ((NV, DR), "a:driver b:navigator"),
        ((DR, OB), "a:navigator b:driver"),
        ((OB, OB), "a:driver b:navigator"),
        # Three: the navigator drives, the next one navigates, the driver takes
        # over the role the new navigator left.
        ((DR, NV, NT), "a:note_taker b:driver c:navigator"),
        ((NT, DR, NV), "a:navigator b:note_taker c:driver"),
        ((OB, NV, OB), "a:observer b:driver c:navigator"),  # nobody drives yet
        ((OB, OB, DR), "a:driver b:navigator c:observer"),  # nobody navigates yet
        ((NV, OB, DR), "a:driver b:navigator c:observer"),
        ((DR, OB, NV), "a:navigator b:observer c:driver"),  # wraps around to the driver
        ((OB, OB, OB), "a:driver b:navigator c:observer"),
        # Five: only those who change roles move.
        ((DR, NV, NT, LW, OB), "a:note_taker b:driver c:navigator d:log_watcher e:observer"),
        ((NT, LW, OB, DR, NV), "a:navigator b:log_watcher c:observer d:note_taker e:driver"),
        ((LW, DR, NV, OB, NT), "a:log_watcher b:observer c:driver d:navigator e:note_taker"),
        ((OB, OB, OB, OB, OB), "a:driver b:navigator c:observer d:observer e:observer"),
    ],
)
def test_the_next_handover(before, after):
    assert after_handover(lineup(*before)) == after


@pytest.mark.parametrize("people", [0, 1])
def test_there_is_no_handover_with_fewer_than_two_people(people):
    assert next_handover(lineup(*[DR][:people])) is None


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_every_handover_keeps_one_driver_and_one_navigator_and_every_other_role(size):
    single = (DR, NV)
    for before in itertools.product((DR, NV, NT, OB, LW), repeat=size):
        if any(before.count(role) > 1 for role in single):
            continue
        order = lineup(*before)
        handover = next_handover(order)
        after = [handover.roles.get(p.pk, p.role) for p in order]
        assert after.count(DR) == 1 and after.count(NV) == 1, (before, after)
        if NV in before:
            assert after[before.index(NV)] == DR, "the navigator takes the keyboard"
        if DR in before and NV in before:
            assert Counter(after) == Counter(before), "no role falls empty"
        assert set(handover.roles) == {
            p.pk for p, role in zip(order, after, strict=True) if role != p.role
        }, "only those whose role changes are listed"
        assert handover.summary == (
            f"{handover.driver.user.username} drives, {handover.navigator.user.username} navigates"
        )


# --- Rotating roles in the live session ---------------------------------------------------------


def test_rotate_now_hands_over_and_logs_it(live_session, facilitator):
    set_status(live_session, Status.LIVE, rotation_minutes=10)
    cast(live_session, ("sam", DR), ("erin", NV), ("kim", NT), ("pat", OB))
    before = timezone.now()
    summary = live.rotate_now(session=live_session, by=facilitator)
    assert summary == "erin drives, kim navigates"
    assert roles_of(live_session) == {"sam": NT, "erin": DR, "kim": NV, "pat": OB}
    assert events(live_session) == [(Event.Kind.ROTATED, "Handover: erin drives, kim navigates")]
    live_session.refresh_from_db()
    assert before + timedelta(minutes=10) <= live_session.rotation_due_at
    assert live_session.rotation_due_at <= timezone.now() + timedelta(minutes=10)


def test_rotating_again_and_again_goes_round_the_rotation_order(live_session, facilitator):
    cast(live_session, ("sam", DR), ("erin", NV), ("kim", OB))
    drivers = [live.rotate_now(session=live_session, by=facilitator) for _ in range(3)]
    assert drivers == [
        "erin drives, kim navigates",
        "kim drives, sam navigates",
        "sam drives, erin navigates",
    ]


def test_rotating_while_the_timer_is_paused_keeps_it_paused(live_session, facilitator):
    set_status(live_session, Status.LIVE, rotation_minutes=10, rotation_paused_seconds=95)
    cast(live_session, ("sam", DR), ("erin", NV))
    live.rotate_now(session=live_session, by=facilitator)
    live_session.refresh_from_db()
    assert (live_session.rotation_due_at, live_session.rotation_paused_seconds) == (None, 95)


def test_only_the_facilitator_rotates(live_session, teammate):
    cast(live_session, ("erin", DR), ("kim", NV))
    with pytest.raises(PermissionDenied):
        live.rotate_now(session=live_session, by=teammate)
    assert roles_of(live_session) == {"erin": DR, "kim": NV}
    assert events(live_session) == []


def test_rotation_needs_two_people(live_session, facilitator):
    cast(live_session, ("erin", DR))
    with pytest.raises(PermissionDenied, match="at least two"):
        live.rotate_now(session=live_session, by=facilitator)
    assert roles_of(live_session) == {"erin": DR}


def test_roles_rotate_only_while_live(session, facilitator):
    cast(session, ("erin", DR), ("kim", NV))
    with pytest.raises(PermissionDenied):
        live.rotate_now(session=session, by=facilitator)
    assert roles_of(session) == {"erin": DR, "kim": NV}


def test_the_rotate_button_works_without_javascript(live_session, facilitator_client):
    cast(live_session, ("erin", DR), ("kim", NV))
    response = facilitator_client.post(url("live_rotate", live_session), follow=True)
    assert "Handover: kim drives, erin navigates." in response.content.decode()
    assert roles_of(live_session) == {"erin": NV, "kim": DR}


# --- The rotation timer ---------------------------------------------------------------------


def test_pause_and_resume_keep_the_time_that_was_left(live_session, facilitator):
    due = timezone.now() + timedelta(seconds=123)
    set_status(live_session, Status.LIVE, rotation_minutes=10, rotation_due_at=due)

    live.pause_rotation(session=live_session, by=facilitator)
    live_session.refresh_from_db()
    assert live_session.rotation_due_at is None
    assert live_session.rotation_paused_seconds in (122, 123)
    left = live_session.rotation_paused_seconds

    before = timezone.now()
    live.resume_rotation(session=live_session, by=facilitator)
    live_session.refresh_from_db()
    assert live_session.rotation_paused_seconds is None
    assert before + timedelta(seconds=left) <= live_session.rotation_due_at
    assert live_session.rotation_due_at <= timezone.now() + timedelta(seconds=left)
    assert events(live_session) == [
        (Event.Kind.ROTATION_PAUSED, "dana paused the rotation timer"),
        (Event.Kind.ROTATION_RESUMED, "dana resumed the rotation timer"),
    ]


def test_a_timer_paused_when_overdue_resumes_at_zero(live_session, facilitator):
    due = timezone.now() - timedelta(seconds=30)
    set_status(live_session, Status.LIVE, rotation_minutes=10, rotation_due_at=due)
    live.pause_rotation(session=live_session, by=facilitator)
    live_session.refresh_from_db()
    assert live_session.rotation_paused_seconds == 0


def test_there_is_nothing_to_pause_without_a_running_timer(live_session, facilitator):
    with pytest.raises(PermissionDenied):
        live.pause_rotation(session=live_session, by=facilitator)
    with pytest.raises(PermissionDenied):
        live.resume_rotation(session=live_session, by=facilitator)
    assert events(live_session) == []


def test_only_the_facilitator_pauses_and_resumes(live_session, teammate):
    due = timezone.now() + timedelta(minutes=5)
    set_status(live_session, Status.LIVE, rotation_minutes=10, rotation_due_at=due)
    with pytest.raises(PermissionDenied):
        live.pause_rotation(session=live_session, by=teammate)
    set_status(live_session, Status.LIVE, rotation_due_at=None, rotation_paused_seconds=60)
    with pytest.raises(PermissionDenied):
        live.resume_rotation(session=live_session, by=teammate)
    live_session.refresh_from_db()
    assert live_session.rotation_paused_seconds == 60
    assert events(live_session) == []


def test_the_pause_and_resume_buttons_work_without_javascript(live_session, facilitator_client):
    due = timezone.now() + timedelta(minutes=5)
    set_status(live_session, Status.LIVE, rotation_minutes=10, rotation_due_at=due)
    page = facilitator_client.post(url("live_pause", live_session), follow=True)
    assert "Rotation timer paused." in page.content.decode()
    assert "Resume rotation" in page.content.decode()
    page = facilitator_client.post(url("live_resume", live_session), follow=True)
    assert "Rotation timer resumed." in page.content.decode()
    live_session.refresh_from_db()
    assert live_session.rotation_due_at is not None


# --- Roles changed by hand --------------------------------------------------------------------


def test_a_role_changed_while_live_is_logged(live_session, facilitator):
    people = cast(live_session, ("erin", DR), ("kim", OB))
    roles.change_role(participant=people["kim"], by=facilitator, data={"role": "log_watcher"})
    assert roles_of(live_session)["kim"] == LW
    assert events(live_session) == [(Event.Kind.ROLE_CHANGED, "kim is log watcher now")]


def test_a_role_changed_while_planning_is_not_an_event(session, facilitator):
    people = cast(session, ("kim", OB))
    roles.change_role(participant=people["kim"], by=facilitator, data={"role": "driver"})
    assert events(session) == []


def test_people_joining_or_leaving_the_cast_while_live_are_logged(live_session, facilitator):
    kim = member(live_session.feature.team, "kim")
    participant = roles.add_participant(
        session=live_session, by=facilitator, data={"user": kim.pk, "role": "observer"}
    )
    roles.remove_participant(participant=participant, by=facilitator)
    assert events(live_session) == [
        (Event.Kind.ROLE_CHANGED, "kim is observer from now on"),
        (Event.Kind.ROLE_CHANGED, "kim left the session"),
    ]


def test_the_live_role_form_changes_a_role_and_answers_with_the_room(
    live_session, facilitator_client
):
    people = cast(live_session, ("erin", DR), ("kim", OB))
    response = facilitator_client.post(
        url("live_role", live_session, participant_id=people["kim"].pk),
        {"role": "navigator"},
        **HTMX,
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="live-room">')
    assert roles_of(live_session) == {"erin": DR, "kim": NV}


def test_the_live_role_form_refuses_a_second_driver(live_session, facilitator_client):
    people = cast(live_session, ("erin", DR), ("kim", OB))
    response = facilitator_client.post(
        url("live_role", live_session, participant_id=people["kim"].pk),
        {"role": "driver"},
        **HTMX,
    )
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()
    assert roles_of(live_session) == {"erin": DR, "kim": OB}
    assert events(live_session) == []


# --- Presence and broadcasts (over real connections) ---------------------------------------------


@pytest.fixture
async def sockets():
    opened = Sockets()
    yield opened
    await opened.close_all()


def room_with_cast(status: str = Status.LIVE) -> Room:
    room = make_room(status=status)
    ParticipantFactory(session=room.session, user=room.dana, role=DR, rotation_position=0)
    ParticipantFactory(session=room.session, user=room.sam, role=NV, rotation_position=1)
    return room


async def room_panels(ws, count: int) -> list[dict[str, bool]]:
    """The next `count` room panels this socket receives, as who is shown here.

    Every arrival, departure and pruning re-renders the room panel once for
    everyone connected, so counting them tells which one is which, however
    they interleave with other messages."""
    panels = []
    while len(panels) < count:
        message = await next_message(ws, skip=())
        if message.get("id") == "live-room":
            panels.append(presence_in(message["html"]))
    return panels


def make_stale(*users) -> None:
    long_ago = timezone.now() - PRESENCE_TIMEOUT - timedelta(seconds=5)
    Presence.objects.filter(user__in=users).update(last_seen=long_ago)


def present(room: Room) -> list[str]:
    return list(
        Presence.objects.filter(session=room.session)
        .order_by("user__username")
        .values_list("user__username", flat=True)
    )


@pytest.mark.django_db(transaction=True)
async def test_someone_joining_is_shown_here_to_everyone(sockets):
    room = await db(room_with_cast)()
    dana = await sockets.connect(room, room.dana)
    await sockets.connect(room, room.sam)
    assert await room_panels(dana, 2) == [
        {"dana": True, "sam": False},  # dana arrives
        {"dana": True, "sam": True},  # then sam
    ]


@pytest.fixture
def renew_at_every_heartbeat(monkeypatch):
    """These tests age presence rows in the database, not the consumers'
    clocks: every heartbeat renews (a connection renews every 20 s)."""
    monkeypatch.setattr(consumers, "PRESENCE_REFRESH_SECONDS", 0)


async def last_seen_before_and_after_a_heartbeat(sockets) -> tuple:
    """Dana's presence row when she has arrived, and after her first heartbeat."""
    room = await db(room_with_cast)()
    dana = await sockets.connect(room, room.dana)
    await room_panels(dana, 1)  # her arrival: the row is written
    joined = await db(Presence.objects.values_list("last_seen", flat=True).get)()
    await dana.send_json_to({"type": "ping"})
    assert (await next_message(dana))["type"] == "pong"
    return joined, await db(Presence.objects.values_list("last_seen", flat=True).get)()


@pytest.mark.django_db(transaction=True)
async def test_a_heartbeat_soon_after_the_last_renewal_leaves_presence_alone(sockets):
    joined, after = await last_seen_before_and_after_a_heartbeat(sockets)
    assert after == joined


@pytest.mark.django_db(transaction=True)
async def test_a_heartbeat_renews_presence_once_the_last_renewal_is_old(
    sockets, renew_at_every_heartbeat
):
    joined, after = await last_seen_before_and_after_a_heartbeat(sockets)
    assert after > joined


@pytest.mark.django_db(transaction=True)
async def test_a_vanished_browser_is_pruned_by_another_heartbeat_and_shown_away(
    sockets, renew_at_every_heartbeat
):
    room = await db(room_with_cast)()
    dana = await sockets.connect(room, room.dana)
    await sockets.connect(room, room.sam)  # then sam's laptop sleeps: no heartbeat, no close
    await room_panels(dana, 2)
    # Both are past the timeout; dana's browser is alive and sends its heartbeat.
    await db(make_stale)(room.dana, room.sam)
    await dana.send_json_to({"type": "ping"})

    assert await room_panels(dana, 1) == [{"dana": True, "sam": False}]
    assert await db(present)(room) == ["dana"]
    last_seen = await db(Presence.objects.values_list("last_seen", flat=True).get)()
    assert last_seen > timezone.now() - PRESENCE_TIMEOUT, "dana's heartbeat renewed her row"


@pytest.mark.django_db(transaction=True)
async def test_a_connection_pruned_while_its_heartbeat_was_late_is_back_at_its_next_one(
    sockets, renew_at_every_heartbeat
):
    """A throttled background tab or a laptop that slept a minute is pruned by
    the others' heartbeats; its socket is still open, and its next heartbeat
    must bring it back."""
    room = await db(room_with_cast)()
    dana = await sockets.connect(room, room.dana)
    sam = await sockets.connect(room, room.sam)
    await room_panels(sam, 1)
    await db(make_stale)(room.dana)
    await sam.send_json_to({"type": "ping"})
    assert await room_panels(sam, 1) == [{"dana": False, "sam": True}]

    await dana.send_json_to({"type": "ping"})
    assert (await next_message(dana))["type"] == "pong"
    assert await db(present)(room) == ["dana", "sam"]
    assert await room_panels(sam, 1) == [{"dana": True, "sam": True}]


@pytest.mark.django_db(transaction=True)
async def test_closing_one_of_two_tabs_keeps_you_here_and_closing_both_shows_you_away(sockets):
    room = await db(room_with_cast)()
    dana = await sockets.connect(room, room.dana)
    first_tab = await sockets.connect(room, room.sam)
    second_tab = await sockets.connect(room, room.sam)
    await room_panels(dana, 3)  # dana, then each of sam's tabs, arriving

    await first_tab.disconnect(timeout=10)
    assert await room_panels(dana, 1) == [{"dana": True, "sam": True}]
    await second_tab.disconnect(timeout=10)
    assert await room_panels(dana, 1) == [{"dana": True, "sam": False}]
    assert await db(present)(room) == ["dana"]


@pytest.mark.django_db(transaction=True)
async def test_start_and_end_reach_everyone_in_the_room(sockets):
    room = await db(room_with_cast)(status=Status.PLANNING)
    sam = await sockets.connect(room, room.sam)

    await db(live.start_session)(session=room.session, by=room.dana)
    got = await until_event_and_state(sam)
    assert "dana started the session" in got["event"]
    assert 'data-status="live"' in got["state"]
    assert "End session" in got["state"]

    await db(live.end_session)(session=room.session, by=room.dana)
    got = await until_event_and_state(sam)
    assert "dana ended the session" in got["event"]
    assert 'data-status="review"' in got["state"]


async def until_event_and_state(ws) -> dict[str, str]:
    got: dict[str, str] = {}
    while len(got) < 2:
        message = await next_message(ws, skip=())
        if message["type"] == "event":
            got["event"] = message["html"]
        elif message.get("id") == "live-state":
            got["state"] = message["html"]
    return got


@pytest.mark.django_db(transaction=True)
async def test_a_goal_ticked_off_reaches_everyone_in_the_room(sockets):
    room = await db(room_with_cast)()
    dana = await sockets.connect(room, room.dana)
    goal = await db(Goal.objects.get)(session=room.session)
    await db(live.set_goal_status)(goal=goal, by=room.sam, data={"status": "problem"})
    event = await next_message(dana)
    assert "sam marked “Export 500 invoices” as problem found" in event["html"]
    panel = await next_message(dana, skip=())
    while panel.get("id") != "live-goals":
        panel = await next_message(dana, skip=())
    assert "Problem found</span>" in panel["html"]


def test_changing_the_rotation_while_live_restarts_the_countdown_for_everyone(
    live_session, facilitator
):
    before = timezone.now()
    roles.set_rotation(session=live_session, by=facilitator, data={"rotation_minutes": "7"})
    live_session.refresh_from_db()
    assert live_session.rotation_minutes == 7
    assert before + timedelta(minutes=7) <= live_session.rotation_due_at
    assert events(live_session) == [(Event.Kind.ROTATION_CHANGED, "Roles rotate every 7 minutes")]
    roles.set_rotation(session=live_session, by=facilitator, data={"rotation_minutes": ""})
    live_session.refresh_from_db()
    assert (live_session.rotation_due_at, live_session.rotation_paused_seconds) == (None, None)


def test_reordering_the_rotation_while_live_is_an_event(live_session, facilitator, teammate):
    first = ParticipantFactory(session=live_session, user=facilitator, rotation_position=0)
    ParticipantFactory(session=live_session, user=teammate, rotation_position=1)
    roles.move_in_rotation(participant=first, by=facilitator, up=False)
    assert events(live_session) == [(Event.Kind.ROLE_CHANGED, "Rotation order is now sam, dana")]
