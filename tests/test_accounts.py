"""Signing up and in, creating teams, and invite links."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from sessions_app.models import Invite, Membership, Team
from tests.conftest import client_for
from tests.factories import (
    PASSWORD,
    InviteFactory,
    MembershipFactory,
    TeamFactory,
    UserFactory,
)

User = get_user_model()


def test_login_page_has_the_contract_names():
    content = Client().get(reverse("login")).content.decode()
    assert '<label for="id_username">Username</label>' in content
    assert '<label for="id_password">Password</label>' in content
    assert '<button type="submit">Log in</button>' in content


def test_login_with_the_right_password_reaches_the_dashboard(facilitator):
    client = Client()
    response = client.post(
        reverse("login"), {"username": "dana", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert "Acme" in response.content.decode()


def test_wrong_password_is_refused_clearly(facilitator):
    response = Client().post(reverse("login"), {"username": "dana", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def test_signup_creates_the_account_and_asks_for_a_team(db):
    client = Client()
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("team_create")
    assert User.objects.filter(username="newbie").exists()
    # Signed in: the dashboard sends a user without a team to create one.
    assert client.get(reverse("dashboard"))["Location"] == reverse("team_create")


def test_signup_with_mismatched_passwords_stores_nothing(db):
    response = Client().post(
        reverse("signup"),
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase",
            "password2": "another-phrase",
        },
    )
    assert response.status_code == 400
    assert "password fields didn’t match" in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_signup_ignores_an_offsite_next(db):
    response = Client().post(
        reverse("signup"),
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
            "next": "https://evil.example.com/",
        },
    )
    assert response["Location"] == reverse("team_create")


def test_first_member_creates_a_team_and_owns_it(db):
    user = UserFactory()
    response = client_for(user).post(reverse("team_create"), {"name": "Initech"})
    assert response.status_code == 302
    team = Team.objects.get(name="Initech")
    assert Membership.objects.get(team=team, user=user).role == Membership.Role.OWNER


def test_team_without_a_name_is_refused(db):
    user = UserFactory()
    response = client_for(user).post(reverse("team_create"), {"name": ""})
    assert response.status_code == 400
    assert not Team.objects.exists()


def test_owner_creates_and_revokes_an_invite_link(team, facilitator, facilitator_client):
    facilitator_client.post(reverse("invite_create"))
    invite = Invite.objects.get(team=team)
    page = facilitator_client.get(reverse("team")).content.decode()
    assert reverse("invite_accept", kwargs={"token": invite.token}) in page
    facilitator_client.post(reverse("invite_revoke", kwargs={"invite_id": invite.pk}))
    invite.refresh_from_db()
    assert invite.revoked_at is not None
    assert invite.token not in facilitator_client.get(reverse("team")).content.decode()


def test_members_who_are_not_owners_cannot_manage_invites(team, facilitator, teammate_client):
    invite = InviteFactory(team=team, created_by=facilitator)
    assert teammate_client.post(reverse("invite_create")).status_code == 403
    revoke = teammate_client.post(reverse("invite_revoke", kwargs={"invite_id": invite.pk}))
    assert revoke.status_code == 403
    assert Invite.objects.filter(revoked_at=None).count() == 1
    assert invite.token not in teammate_client.get(reverse("team")).content.decode()


def test_outsider_cannot_revoke_another_teams_invite(team, facilitator, outsider_client):
    invite = InviteFactory(team=team, created_by=facilitator)
    response = outsider_client.post(reverse("invite_revoke", kwargs={"invite_id": invite.pk}))
    assert response.status_code == 404
    invite.refresh_from_db()
    assert invite.revoked_at is None


def test_signed_in_user_joins_with_an_invite_link(team, facilitator, outsider):
    invite = InviteFactory(team=team, created_by=facilitator)
    client = client_for(outsider)
    url = reverse("invite_accept", kwargs={"token": invite.token})
    assert "Join Acme" in client.get(url).content.decode()
    response = client.post(url)
    assert response["Location"] == reverse("dashboard")
    assert Membership.objects.filter(team=team, user=outsider).exists()
    # The team just joined becomes the current one.
    assert "<h1>Acme</h1>" in client.get(reverse("dashboard")).content.decode()
    # Joining twice keeps one membership.
    client.post(url)
    assert Membership.objects.filter(team=team, user=outsider).count() == 1


def test_new_user_signs_up_through_an_invite_and_joins(team, facilitator):
    invite = InviteFactory(team=team, created_by=facilitator)
    url = reverse("invite_accept", kwargs={"token": invite.token})
    client = Client()
    page = client.get(url).content.decode()
    assert f"{reverse('signup')}?next={url}" in page.replace("%2F", "/")
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
            "next": url,
        },
    )
    assert response["Location"] == url
    client.post(url)
    assert Membership.objects.filter(team=team, user__username="newbie").exists()


def test_anonymous_post_to_an_invite_goes_to_login(team, facilitator):
    invite = InviteFactory(team=team, created_by=facilitator)
    url = reverse("invite_accept", kwargs={"token": invite.token})
    response = Client().post(url)
    assert response["Location"].startswith(reverse("login"))
    assert team.memberships.count() == 1


def test_revoked_or_unknown_invite_is_not_found(team, facilitator, outsider):
    invite = InviteFactory(team=team, created_by=facilitator)
    invite.revoked_at = invite.created_at
    invite.save()
    client = client_for(outsider)
    assert client.get(reverse("invite_accept", kwargs={"token": invite.token})).status_code == 404
    assert client.post(reverse("invite_accept", kwargs={"token": invite.token})).status_code == 404
    assert client.get(reverse("invite_accept", kwargs={"token": "forged"})).status_code == 404
    assert not Membership.objects.filter(team=team, user=outsider).exists()


def test_user_switches_between_their_teams(team, facilitator, facilitator_client):
    other = TeamFactory(name="Side project")
    MembershipFactory(team=other, user=facilitator)
    facilitator_client.post(reverse("team_switch", kwargs={"team_id": other.pk}))
    assert "<h1>Side project</h1>" in facilitator_client.get(reverse("dashboard")).content.decode()


def test_switching_to_a_team_one_is_not_in_is_not_found(team, outsider_client):
    response = outsider_client.post(reverse("team_switch", kwargs={"team_id": team.pk}))
    assert response.status_code == 404


def test_logout_is_a_post(facilitator_client):
    response = facilitator_client.post(reverse("logout"))
    assert response.status_code == 302
    assert facilitator_client.get(reverse("dashboard"))["Location"].startswith(reverse("login"))


def test_staff_reach_the_admin(db):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    assert client_for(admin).get("/admin/sessions_app/ensemblesession/").status_code == 200
    assert client_for(UserFactory()).get("/admin/").status_code == 302
