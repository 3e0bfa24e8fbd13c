"""The usual cast: a team with an owner who facilitates, a teammate, and an outsider."""

from __future__ import annotations

import asyncio

import pytest
from django.test import Client

from sessions_app.models import Membership
from tests.factories import (
    FeatureFactory,
    MembershipFactory,
    SessionFactory,
    TeamFactory,
    UserFactory,
)


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API leaves an event loop running in
    the main thread, which breaks every asyncio test that runs after it."""
    items.sort(key=lambda item: "/e2e/" in str(item.path).replace("\\", "/"))


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """The rate limits count in the process's cache: each test starts at zero."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def fresh_channel_layers():
    """Every test starts and ends with new channel layers (see
    tests/live_room.fresh_channel_layer): channels-redis ties its receive
    state to the event loop that first received, and each test has its own."""
    from tests.live_room import fresh_channel_layer

    fresh_channel_layer()
    yield
    fresh_channel_layer()


@pytest.fixture(autouse=True)
def database_thread_released():
    """The live room's database thread keeps its connection while busy (see
    sessions_app/db_thread.py); each test's event loop ends with it, so the
    connection is given back here, or the test database could not be dropped."""
    yield
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from sessions_app.db_thread import release

        asyncio.run(release())
    # else Playwright's loop runs in this thread: browser tests talk to a
    # server process of their own, not to a consumer in this one.


@pytest.fixture
def team(db):
    return TeamFactory(name="Acme")


@pytest.fixture
def facilitator(team):
    """The team's owner, who facilitates the session."""
    user = UserFactory(username="dana")
    MembershipFactory(team=team, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def teammate(team):
    user = UserFactory(username="sam")
    MembershipFactory(team=team, user=user)
    return user


@pytest.fixture
def outsider(db):
    """A member of another team."""
    user = UserFactory(username="olga")
    MembershipFactory(team=TeamFactory(name="Globex"), user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def feature(team):
    return FeatureFactory(team=team, name="Bulk invoice export", flag_key="bulk-invoice-export")


@pytest.fixture
def session(feature, facilitator):
    return SessionFactory(feature=feature, title="Bulk export walkthrough", facilitator=facilitator)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def facilitator_client(facilitator):
    return client_for(facilitator)


@pytest.fixture
def teammate_client(teammate):
    return client_for(teammate)


@pytest.fixture
def outsider_client(outsider):
    return client_for(outsider)
