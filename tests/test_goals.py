"""The goals board: adding, editing, voting, must-cover, merging, filtering."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from sessions_app.models import Goal, GoalVote
from tests.conftest import client_for
from tests.factories import (
    GoalFactory,
    GoalVoteFactory,
    MembershipFactory,
    ParticipantFactory,
    SessionFactory,
    UserFactory,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, session, goal=None) -> str:
    kwargs = {"session_id": session.pk}
    if goal is not None:
        kwargs["goal_id"] = goal.pk
    return reverse(name, kwargs=kwargs)


# --- Adding -----------------------------------------------------------------


def test_member_adds_a_goal_and_htmx_gets_the_board_back(session, teammate_client, teammate):
    response = teammate_client.post(
        url("goal_add", session),
        {"text": "Export 500 invoices at once", "perspective": "support"},
        **HTMX,
    )
    assert response.status_code == 200
    goal = Goal.objects.get(session=session)
    assert (goal.text, goal.perspective, goal.author) == (
        "Export 500 invoices at once",
        "support",
        teammate,
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="goal-board"')
    assert "Export 500 invoices at once" in html
    assert "<html" not in html


def test_plain_form_adds_a_goal_and_redirects_back_to_the_board(session, teammate_client):
    response = teammate_client.post(
        url("goal_add", session), {"text": "Check the CSV", "perspective": "product"}
    )
    assert response.status_code == 302
    assert response["Location"] == url("session_plan", session) + "#goals"
    assert Goal.objects.filter(session=session, text="Check the CSV").exists()
    # Without JavaScript the confirmation comes as a message on the page.
    assert "Goal added." in teammate_client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"text": "", "perspective": "support"},
            "Write the goal you want the session to cover.",
        ),
        (
            {"text": "   ", "perspective": "support"},
            "Write the goal you want the session to cover.",
        ),
        ({"text": "x" * 501, "perspective": "support"}, "at most 500 characters"),
        ({"text": "Fine text", "perspective": "marketing"}, "Select a valid choice"),
        (
            {"text": "Fine text", "perspective": ""},
            "Choose the perspective this goal comes from.",
        ),
    ],
)
def test_bad_goal_gets_a_clear_error_and_stores_nothing(session, teammate_client, data, message):
    plain = teammate_client.post(url("goal_add", session), data)
    htmx = teammate_client.post(url("goal_add", session), data, **HTMX)
    assert plain.status_code == 400
    assert htmx.status_code == 422
    assert message in plain.content.decode()
    assert message in htmx.content.decode()
    assert not Goal.objects.exists()


def test_goal_of_exactly_500_characters_is_accepted(session, teammate_client):
    teammate_client.post(url("goal_add", session), {"text": "x" * 500, "perspective": "design"})
    assert Goal.objects.get().text == "x" * 500


def test_goal_text_is_escaped_on_the_board(session, teammate_client):
    teammate_client.post(
        url("goal_add", session),
        {"text": "<script>alert(1)</script>", "perspective": "design"},
    )
    html = teammate_client.get(url("session_plan", session)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_outsider_cannot_add_a_goal(session, outsider_client):
    response = outsider_client.post(
        url("goal_add", session), {"text": "Sneaky", "perspective": "other"}
    )
    assert response.status_code == 404
    assert not Goal.objects.exists()


def test_anonymous_user_is_sent_to_login(session):
    response = Client().post(url("goal_add", session), {"text": "x", "perspective": "other"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Goal.objects.exists()


def test_post_without_csrf_token_is_refused(session, teammate):
    client = Client(enforce_csrf_checks=True)
    client.force_login(teammate)
    response = client.post(url("goal_add", session), {"text": "x", "perspective": "other"})
    assert response.status_code == 403
    assert not Goal.objects.exists()


# --- Editing and deleting -------------------------------------------------------


def test_author_edits_their_goal(session, teammate, teammate_client):
    goal = GoalFactory(session=session, author=teammate, text="Old")
    response = teammate_client.post(
        url("goal_edit", session, goal),
        {"text": "New", "perspective": "design"},
        **HTMX,
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#goal-board"
    goal.refresh_from_db()
    assert (goal.text, goal.perspective) == ("New", "design")


def test_edit_form_is_offered_to_the_author(session, teammate, teammate_client):
    goal = GoalFactory(session=session, author=teammate, text="Mine")
    response = teammate_client.get(url("goal_edit", session, goal), **HTMX)
    assert response.status_code == 200
    assert 'id="goal-' in response.content.decode()
    assert "Save goal" in response.content.decode()


def test_edit_page_on_its_own_is_a_plain_form_that_returns_to_the_board(
    session, teammate, teammate_client
):
    goal = GoalFactory(session=session, author=teammate, text="Mine", perspective="design")
    page = teammate_client.get(url("goal_edit", session, goal), {"perspective": "design"})
    assert "hx-post" not in page.content.decode()
    assert f'action="{url("goal_edit", session, goal)}?perspective=design"' in page.content.decode()
    response = teammate_client.post(
        url("goal_edit", session, goal) + "?perspective=design",
        {"text": "Mine, reworded", "perspective": "design"},
    )
    assert response["Location"] == url("session_plan", session) + "?perspective=design#goals"
    goal.refresh_from_db()
    assert goal.text == "Mine, reworded"


def test_member_does_not_get_the_edit_form_of_someone_elses_goal(
    session, facilitator, teammate_client
):
    goal = GoalFactory(session=session, author=facilitator)
    assert teammate_client.get(url("goal_edit", session, goal)).status_code == 403


def test_bad_edit_keeps_the_goal_as_it_was(session, teammate, teammate_client):
    goal = GoalFactory(session=session, author=teammate, text="Keep me")
    response = teammate_client.post(
        url("goal_edit", session, goal), {"text": "", "perspective": "design"}, **HTMX
    )
    assert response.status_code == 422
    assert "Write the goal you want the session to cover." in response.content.decode()
    goal.refresh_from_db()
    assert goal.text == "Keep me"


def test_member_cannot_edit_or_delete_someone_elses_goal(session, facilitator, teammate_client):
    goal = GoalFactory(session=session, author=facilitator, text="Dana's")
    edit = teammate_client.post(
        url("goal_edit", session, goal), {"text": "Hijacked", "perspective": "other"}
    )
    delete = teammate_client.post(url("goal_delete", session, goal))
    assert edit.status_code == 403
    assert delete.status_code == 403
    goal.refresh_from_db()
    assert goal.text == "Dana's"


def test_facilitator_edits_and_deletes_any_goal(session, teammate, facilitator_client):
    goal = GoalFactory(session=session, author=teammate, text="Typo")
    facilitator_client.post(
        url("goal_edit", session, goal), {"text": "Fixed", "perspective": "support"}
    )
    goal.refresh_from_db()
    assert goal.text == "Fixed"
    facilitator_client.post(url("goal_delete", session, goal))
    assert not Goal.objects.filter(pk=goal.pk).exists()


def test_author_deletes_their_goal(session, teammate, teammate_client):
    goal = GoalFactory(session=session, author=teammate)
    response = teammate_client.post(url("goal_delete", session, goal), **HTMX)
    assert response.status_code == 200
    assert not Goal.objects.filter(pk=goal.pk).exists()


# --- Votes ------------------------------------------------------------------


def test_vote_toggles_on_and_off(session, teammate, teammate_client):
    goal = GoalFactory(session=session)
    first = teammate_client.post(url("goal_vote", session, goal), **HTMX)
    assert GoalVote.objects.filter(goal=goal, user=teammate).count() == 1
    assert 'aria-pressed="true"' in first.content.decode()
    assert "1 vote<" in first.content.decode()
    second = teammate_client.post(url("goal_vote", session, goal), **HTMX)
    assert not GoalVote.objects.filter(goal=goal).exists()
    assert 'aria-pressed="false"' in second.content.decode()
    assert "0 votes" in second.content.decode()


def test_each_member_has_one_vote_per_goal(session, teammate, facilitator):
    goal = GoalFactory(session=session)
    client_for(teammate).post(url("goal_vote", session, goal))
    client_for(facilitator).post(url("goal_vote", session, goal))
    assert goal.votes.count() == 2


def test_vote_on_another_teams_goal_is_not_found(session, outsider_client):
    goal = GoalFactory(session=session)
    response = outsider_client.post(url("goal_vote", session, goal))
    assert response.status_code == 404
    assert not GoalVote.objects.exists()


def test_forged_goal_id_from_another_session_is_not_found(session, teammate_client, outsider):
    other_session = SessionFactory()
    foreign_goal = GoalFactory(session=other_session)
    # The session is the teammate's own; the goal belongs elsewhere.
    response = teammate_client.post(url("goal_vote", session, foreign_goal))
    assert response.status_code == 404
    edit = teammate_client.post(
        url("goal_edit", session, foreign_goal), {"text": "x", "perspective": "other"}
    )
    assert edit.status_code == 404
    assert not GoalVote.objects.exists()


def test_goals_are_ordered_by_must_cover_then_votes(session, teammate, facilitator):
    few = GoalFactory(session=session, text="Few votes")
    many = GoalFactory(session=session, text="Many votes")
    must = GoalFactory(session=session, text="Must cover", must_cover=True)
    GoalVoteFactory(goal=many, user=teammate)
    GoalVoteFactory(goal=many, user=facilitator)
    GoalVoteFactory(goal=few, user=teammate)
    ordered = list(Goal.objects.filter(session=session).for_board(teammate))
    assert ordered == [must, many, few]
    html = client_for(teammate).get(url("session_plan", session)).content.decode()
    assert html.index("Must cover") < html.index("Many votes") < html.index("Few votes")


# --- Must-cover and merging -------------------------------------------------------


def test_facilitator_marks_and_unmarks_must_cover(session, facilitator_client):
    goal = GoalFactory(session=session)
    facilitator_client.post(url("goal_must_cover", session, goal), {"must_cover": "1"})
    goal.refresh_from_db()
    assert goal.must_cover
    facilitator_client.post(url("goal_must_cover", session, goal), {"must_cover": "0"})
    goal.refresh_from_db()
    assert not goal.must_cover


def test_member_cannot_mark_must_cover(session, teammate_client):
    goal = GoalFactory(session=session)
    response = teammate_client.post(url("goal_must_cover", session, goal), {"must_cover": "1"})
    assert response.status_code == 403
    goal.refresh_from_db()
    assert not goal.must_cover


def test_merge_carries_votes_over_without_double_votes(session, facilitator, facilitator_client):
    keep = GoalFactory(session=session, text="Export many invoices")
    duplicate = GoalFactory(session=session, text="Bulk export lots of invoices", must_cover=True)
    both, only_duplicate, only_keep = UserFactory(), UserFactory(), UserFactory()
    for user in (both, only_duplicate, only_keep):
        MembershipFactory(team=session.feature.team, user=user)
    GoalVoteFactory(goal=keep, user=both)
    GoalVoteFactory(goal=keep, user=only_keep)
    GoalVoteFactory(goal=duplicate, user=both)
    GoalVoteFactory(goal=duplicate, user=only_duplicate)

    response = facilitator_client.post(
        url("goals_merge", session),
        {"duplicate": duplicate.pk, "keep": keep.pk},
        **HTMX,
    )

    assert response.status_code == 200
    assert not Goal.objects.filter(pk=duplicate.pk).exists()
    assert set(keep.votes.values_list("user", flat=True)) == {
        both.pk,
        only_duplicate.pk,
        only_keep.pk,
    }
    keep.refresh_from_db()
    assert keep.must_cover


def test_merging_a_goal_into_itself_is_refused(session, facilitator_client):
    goal = GoalFactory(session=session)
    GoalFactory(session=session)
    response = facilitator_client.post(
        url("goals_merge", session), {"duplicate": goal.pk, "keep": goal.pk}, **HTMX
    )
    assert response.status_code == 422
    assert "Choose two different goals to merge." in response.content.decode()
    assert Goal.objects.filter(pk=goal.pk).exists()


def test_merging_with_another_teams_goal_is_refused(session, facilitator_client):
    mine = GoalFactory(session=session)
    foreign = GoalFactory(session=SessionFactory())
    response = facilitator_client.post(
        url("goals_merge", session), {"duplicate": foreign.pk, "keep": mine.pk}
    )
    assert response.status_code == 400
    assert Goal.objects.filter(pk=foreign.pk).exists()


def test_member_cannot_merge(session, teammate_client):
    a, b = GoalFactory(session=session), GoalFactory(session=session)
    response = teammate_client.post(url("goals_merge", session), {"duplicate": a.pk, "keep": b.pk})
    assert response.status_code == 403
    assert Goal.objects.filter(pk=a.pk).exists()


# --- Reading the board ------------------------------------------------------------


def test_filter_by_perspective_shows_only_that_perspective(session, teammate_client):
    GoalFactory(session=session, text="Support goal", perspective="support")
    GoalFactory(session=session, text="Design goal", perspective="design")
    html = teammate_client.get(url("session_plan", session), {"perspective": "design"}).content
    assert b"Design goal" in html
    assert b"Support goal" not in html
    assert b"Support (1)" in html


def test_unknown_perspective_filter_shows_everything(session, teammate_client):
    GoalFactory(session=session, text="Support goal", perspective="support")
    html = teammate_client.get(url("session_plan", session), {"perspective": "<b>"}).content
    assert b"Support goal" in html


def test_board_shows_who_has_added_goals(session, facilitator, teammate, teammate_client):
    GoalFactory(session=session, author=teammate)
    html = teammate_client.get(url("session_plan", session)).content.decode()
    assert "1 of 2" in html
    assert "sam\n        (1)" in html or "sam (1)" in " ".join(html.split())
    assert "dana (none yet)" in " ".join(html.split())


def test_contributors_are_the_participants_once_roles_are_given(
    session, facilitator, teammate, teammate_client
):
    bystander = UserFactory(username="bystander")
    MembershipFactory(team=session.feature.team, user=bystander)
    ParticipantFactory(session=session, user=teammate)
    html = " ".join(teammate_client.get(url("session_plan", session)).content.decode().split())
    assert "0 of 2" in html
    assert "bystander" not in html


def test_outsider_gets_404_on_the_plan_page(session, outsider_client):
    assert outsider_client.get(url("session_plan", session)).status_code == 404


@pytest.mark.parametrize("viewer", ["teammate", "facilitator"])
def test_board_queries_stay_constant_as_goals_grow(
    session, teammate, facilitator, viewer, django_assert_max_num_queries
):
    viewer_client = client_for(teammate if viewer == "teammate" else facilitator)

    def grow(n: int) -> None:
        for _ in range(n):
            author = UserFactory()
            MembershipFactory(team=session.feature.team, user=author)
            goal = GoalFactory(session=session, author=author)
            GoalVoteFactory(goal=goal, user=teammate)
            ParticipantFactory(session=session, user=author)

    grow(2)
    with django_assert_max_num_queries(20) as small:
        viewer_client.get(url("session_plan", session))
    grow(30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = viewer_client.get(url("session_plan", session))
    assert response.content.decode().count('<li class="goal') == 32


def test_facilitators_goals_in_other_sessions_do_not_inflate_their_count(
    session, facilitator, teammate, teammate_client
):
    ParticipantFactory(session=session, user=teammate)
    for _ in range(2):
        elsewhere = SessionFactory(feature=session.feature, facilitator=facilitator)
        ParticipantFactory(session=elsewhere, user=facilitator)
    GoalFactory(session=elsewhere, author=facilitator)
    GoalFactory(session=session, author=facilitator)
    html = " ".join(teammate_client.get(url("session_plan", session)).content.decode().split())
    assert "dana (1)" in html
    assert "sam (none yet)" in html
