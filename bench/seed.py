"""The benchmark's data, written straight into a deployment's database.

Run as `python -m bench.seed '<json spec>'` with the deployment's environment;
prints JSON: the rooms' ids and one session cookie per user. Users get an
unusable password (no slow hashing) and a real signed-in session, made with
Django's own session engine, so their cookies pass AuthMiddlewareStack as a
browser's would.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import django


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def live_rooms(*, users: int, rooms: int, tag: str) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from sessions_app.models import EnsembleSession, Feature, Membership, Team

    User = get_user_model()
    team = Team.objects.create(name=f"Bench {tag}")
    people = User.objects.bulk_create(
        User(username=f"bench-{tag}-{index}", password="!") for index in range(users)
    )
    people = list(User.objects.filter(username__startswith=f"bench-{tag}-").order_by("id"))
    Membership.objects.bulk_create(
        Membership(team=team, user=user, role=Membership.Role.MEMBER) for user in people
    )
    feature = Feature.objects.create(team=team, name=f"Bench {tag}", flag_key=f"bench-{tag}")
    sessions = EnsembleSession.objects.bulk_create(
        EnsembleSession(
            feature=feature,
            title=f"Bench room {index}",
            internal_tenant="bench",
            facilitator=people[0],
            status=EnsembleSession.Status.LIVE,
            started_at=timezone.now(),
        )
        for index in range(rooms)
    )
    cookies = []
    for user in people:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={store.session_key}")
    return {"rooms": [str(session.pk) for session in sessions], "cookies": cookies}


def main() -> int:
    spec = json.loads(sys.argv[1])
    _setup()
    print(json.dumps(live_rooms(**spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
