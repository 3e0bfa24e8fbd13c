"""Server time and query count of the pages that grow with a session: the live
room, the review page and the three exports, at a small and a large session.

Run as `python -m bench.pages '<json spec>'` with the deployment's environment;
prints JSON. Requests go through Django's whole ASGI handler (middleware,
session, view, template, streaming body) in this process, so the time is the
server's own, without the network; queries are counted as Django runs them.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

import django

GOALS = 200
PARTICIPANTS = 8


def make_session(*, notes: int, tag: str):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from sessions_app.models import (
        EnsembleSession,
        Feature,
        Goal,
        Membership,
        Note,
        Participant,
        Team,
    )

    User = get_user_model()
    team = Team.objects.create(name=f"Pages {tag}")
    people = [
        User.objects.create(username=f"pages-{tag}-{index}", password="!")
        for index in range(PARTICIPANTS)
    ]
    Membership.objects.bulk_create(
        Membership(team=team, user=user, role=Membership.Role.OWNER if not i else "member")
        for i, user in enumerate(people)
    )
    feature = Feature.objects.create(team=team, name=f"Pages {tag}", flag_key=f"pages-{tag}")
    session = EnsembleSession.objects.create(
        feature=feature,
        title=f"Pages at {notes} notes",
        internal_tenant="bench",
        facilitator=people[0],
        status=EnsembleSession.Status.REVIEW,
        started_at=timezone.now(),
        ended_at=timezone.now(),
    )
    roles = [role for role, _ in Participant.Role.choices]
    Participant.objects.bulk_create(
        Participant(
            session=session,
            user=user,
            role=roles[i] if i < 2 else Participant.Role.OBSERVER,
            rotation_position=i,
        )
        for i, user in enumerate(people)
    )
    perspectives = [value for value, _ in Goal.Perspective.choices]
    goals = Goal.objects.bulk_create(
        Goal(
            session=session,
            author=people[i % PARTICIPANTS],
            text=f"Goal {i}: check the export of case {i}",
            perspective=perspectives[i % len(perspectives)],
            must_cover=i % 10 == 0,
        )
        for i in range(GOALS)
    )
    kinds = [value for value, _ in Note.Kind.choices]
    Note.objects.bulk_create(
        (
            Note(
                session=session,
                seq=seq,
                revision=seq,
                kind=kinds[seq % len(kinds)],
                text=f"Note {seq}: the export of 500 invoices took a while, then finished.",
                author=people[seq % PARTICIPANTS],
                goal=goals[seq % GOALS] if seq % 3 == 0 else None,
                client_id=f"pages-{tag}-{seq:08d}",
            )
            for seq in range(1, notes + 1)
        ),
        batch_size=2000,
    )
    EnsembleSession.objects.filter(pk=session.pk).update(last_seq=notes, revision=notes)
    if connection.vendor == "postgresql":
        # The notes were loaded a moment ago, not over a session: PostgreSQL's
        # autovacuum has not yet counted them, as it would have by the time a
        # real session reached 10,000, and its plans would be for an empty table.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return session, people[0]


def measure(client, url: str, runs: int, budget: float, warm: bool) -> dict[str, Any]:
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    async def fetch():
        start = time.perf_counter()
        response = await client.get(url)
        first = time.perf_counter()
        if response.streaming:
            parts = aiter(response.streaming_content)
            await anext(parts, None)
            first = time.perf_counter()
            async for _ in parts:
                pass
        else:
            _ = response.content
        return response, time.perf_counter() - start, first - start

    def get() -> tuple[float, float, int]:
        # Through Django's ASGI handler, as daphne serves it; called from this
        # (the main) thread, the view's sync work runs back on it, so its
        # queries are counted on this thread's connection.
        with CaptureQueriesContext(connection) as queries:
            response, elapsed, first = async_to_sync(fetch)()
        assert response.status_code == 200, (url, response.status_code)
        return elapsed, first, len(queries)

    if warm:
        get()  # templates compiled, connection pool filled
    times, firsts, counts = [], [], []
    started = time.perf_counter()
    # At least min(runs, 3) runs; past that, only within the time budget.
    while len(times) < runs and (
        len(times) < min(runs, 3) or time.perf_counter() - started < budget
    ):
        elapsed, first, queries = get()
        times.append(elapsed)
        firsts.append(first)
        counts.append(queries)
    return {
        "median_ms": round(statistics.median(times) * 1000, 1),
        # A streamed body starts before it ends: when its first part was ready.
        "first_byte_ms": round(statistics.median(firsts) * 1000, 1),
        "queries": max(counts),
        "runs": len(times),
    }


def main() -> int:
    spec = json.loads(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    results: dict[str, Any] = {}
    for index, size in enumerate(spec["notes"]):
        session, owner = make_session(notes=size, tag=f"{spec['tag']}-{size}")
        client = AsyncClient()
        async_to_sync(client.aforce_login)(owner)
        base = f"/sessions/{session.pk}/"
        pages = {
            "live": base + "live/",
            "review": base + "review/",
            "export.json": base + "export.json",
            "export.md": base + "export.md",
            "export.csv": base + "export.csv",
        }
        for name, url in pages.items():
            results[f"{name}@{size}"] = measure(
                client, url, spec["runs"], spec["budget"], warm=index == 0 or spec["runs"] > 1
            )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
