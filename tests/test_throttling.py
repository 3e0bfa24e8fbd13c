"""Limits on abuse, each with a clear answer: sign-in attempts (django-axes),
changes through the pages, and the API; the websocket's own limit is in
tests/test_live_consumer.py."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import authenticate
from django.test import AsyncClient, Client
from django.urls import reverse

from sessions_app import throttling
from sessions_app.models import Goal
from sessions_app.services.tokens import create_token
from tests.factories import PASSWORD
from tests.live_room import TIMEOUT, fresh_channel_layer, make_room, still_open

LOGIN = "/accounts/login/"


def sign_in(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client: Client, username: str, times: int, address: str = "127.0.0.1") -> None:
    for _ in range(times):
        response = sign_in(client, username, "wrong-password", address)
        assert response.status_code == 200  # the form again, with its error


def lock_out(client: Client, username: str, address: str = "127.0.0.1"):
    """Four wrong passwords get the form again; the fifth, the lockout page."""
    fail(client, username, 4, address)
    return sign_in(client, username, "wrong-password", address)


@pytest.fixture
def clock(monkeypatch):
    """The rate limits' clock, moved on by the test instead of sleeping."""
    now = [1_000_040.0]  # 20 s into a one-minute window (1_000_020 is one's start)
    monkeypatch.setattr(throttling, "clock", lambda: now[0])
    return now


# --- Sign-in ----------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_username_out_with_a_page_saying_to_wait(facilitator):
    client = Client()
    fifth = lock_out(client, "dana")
    # Even the right password is refused now: the lock is checked first.
    response = sign_in(client, "dana", PASSWORD)

    for locked in (fifth, response):
        assert locked.status_code == 429
        assert locked["Retry-After"] == "900"
        page = locked.content.decode()
        assert "Too many failed sign-ins" in page
        assert "Wait 15 minutes, then try again." in page
    assert "_auth_user_id" not in client.session


def test_four_wrong_passwords_still_let_the_right_one_in_and_reset_the_count(facilitator):
    client = Client()
    fail(client, "dana", 4)
    assert sign_in(client, "dana", PASSWORD).status_code == 302
    client.logout()

    fail(client, "dana", 4)
    response = sign_in(client, "dana", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")


def test_a_lockout_is_for_one_username_from_one_address(facilitator, teammate):
    assert lock_out(Client(), "dana", address="203.0.113.9").status_code == 429

    # Nobody can lock a colleague out from elsewhere…
    assert sign_in(Client(), "dana", PASSWORD, address="198.51.100.7").status_code == 302
    # …and another account from the same address is not locked.
    assert sign_in(Client(), "sam", PASSWORD, address="203.0.113.9").status_code == 302
    assert sign_in(Client(), "dana", PASSWORD, address="203.0.113.9").status_code == 429


def test_signing_in_without_a_request_is_neither_throttled_nor_refused(facilitator):
    """A management command or the test client's login() has no request."""
    fail(Client(), "dana", 4)
    assert authenticate(username="dana", password=PASSWORD) == facilitator
    assert authenticate(username="dana", password="wrong") is None


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_page_is_served_when_django_runs_async_as_under_daphne():
    # Under ASGI django-axes calls the lockout page with other arguments.
    await database_sync_to_async(make_room)()
    client = AsyncClient()
    for _ in range(4):
        response = await client.post(LOGIN, {"username": "dana", "password": "wrong"})
        assert response.status_code == 200
    await client.post(LOGIN, {"username": "dana", "password": "wrong"})

    response = await client.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Too many failed sign-ins" in response.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_a_session_from_the_login_form_is_accepted_by_the_websocket():
    """Sign-in goes through django-axes's backend; the session it leaves must
    still authenticate the live room's websocket."""
    from config.asgi import application

    fresh_channel_layer()
    room = await database_sync_to_async(make_room)()
    client = Client()
    response = await database_sync_to_async(sign_in)(client, "sam", PASSWORD)
    assert response.status_code == 302
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    ws = WebsocketCommunicator(
        application,
        f"/ws/sessions/{room.session_id}/",
        headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")],
    )
    connected, _ = await ws.connect(timeout=TIMEOUT)
    try:
        assert connected
        await still_open(ws)
    finally:
        await ws.disconnect(timeout=TIMEOUT)
        fresh_channel_layer()


# --- Changes through the pages ------------------------------------------------------------


def add_goal(client: Client, session, text: str, **headers):
    url = reverse("goal_add", kwargs={"session_id": session.pk})
    return client.post(url, {"text": text, "perspective": "support"}, headers=headers)


def test_writes_beyond_the_limit_get_429_saying_how_long_to_wait_and_store_nothing(
    session, teammate_client, facilitator_client, settings, clock
):
    settings.WRITES_PER_MINUTE = 3
    for n in range(3):
        assert add_goal(teammate_client, session, f"Goal {n}").status_code == 302

    response = add_goal(teammate_client, session, "One too many")

    assert response.status_code == 429
    assert response["Retry-After"] == "40"
    assert "Wait 40 seconds." in response.content.decode()
    assert not Goal.objects.filter(text="One too many").exists()
    # Someone else's allowance is their own.
    assert add_goal(facilitator_client, session, "Dana's goal").status_code == 302
    # Reading is never limited.
    assert teammate_client.get(reverse("session_plan", args=[session.pk])).status_code == 200

    clock[0] += 40
    assert add_goal(teammate_client, session, "Next minute").status_code == 302


def test_an_htmx_write_beyond_the_limit_gets_a_short_text_answer(
    session, teammate_client, settings, clock
):
    settings.WRITES_PER_MINUTE = 1
    add_goal(teammate_client, session, "First", HX_Request="true")

    response = add_goal(teammate_client, session, "Second", HX_Request="true")

    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode().endswith("Wait 40 seconds.")


def test_a_forged_cross_site_post_does_not_use_up_the_allowance(session, teammate, settings, clock):
    settings.WRITES_PER_MINUTE = 1
    client = Client(enforce_csrf_checks=True)
    client.force_login(teammate)
    for _ in range(3):
        assert add_goal(client, session, "Forged").status_code == 403

    client.get(reverse("session_plan", args=[session.pk]))
    token = client.cookies["csrftoken"].value
    response = add_goal(client, session, "Real", X_CSRFToken=token)

    assert response.status_code == 302
    assert list(Goal.objects.values_list("text", flat=True)) == ["Real"]


# --- The API ------------------------------------------------------------------------------


def api_get(flag_key: str, token: str):
    return Client().get(
        reverse("api_feature_rollout", kwargs={"flag_key": flag_key}),
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_api_answers_429_with_retry_after_past_the_limit_per_token(
    feature, teammate, facilitator, settings, clock
):
    settings.API_REQUESTS_PER_MINUTE = 2
    _, mine = create_token(user=teammate, name="CI")
    _, theirs = create_token(user=facilitator, name="Flags")
    assert [api_get(feature.flag_key, mine).status_code for _ in range(2)] == [200, 200]

    response = api_get(feature.flag_key, mine)

    assert response.status_code == 429
    assert response["Retry-After"] == "40"
    assert response.json() == {
        "error": "Too many requests with this token: at most 2 a minute. Retry in 40 seconds.",
        "retry_after": 40,
    }
    assert api_get(feature.flag_key, theirs).status_code == 200
    clock[0] += 40
    assert api_get(feature.flag_key, mine).status_code == 200


def test_requests_without_a_valid_token_are_throttled_too(feature, settings, clock):
    settings.API_REQUESTS_PER_MINUTE = 2
    assert [api_get(feature.flag_key, "ens_guess").status_code for _ in range(2)] == [401, 401]
    assert api_get(feature.flag_key, "ens_guess").status_code == 429

    client = Client()
    url = reverse("api_feature_rollout", kwargs={"flag_key": feature.flag_key})
    assert [client.get(url).status_code for _ in range(3)] == [401, 401, 429]
