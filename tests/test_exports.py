"""The review page and the three exports: everything the session produced, the
JSON exactly as the contract's schema, the CSV readable by any csv reader, the
Markdown safe to paste, and none of it for people outside the team."""

from __future__ import annotations

import csv
import datetime
import io
import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions_app.models import EnsembleSession, Goal, Note, Participant
from sessions_app.services import live, notes, outcome
from tests.conftest import client_for
from tests.downloads import downloaded
from tests.factories import (
    GoalFactory,
    GoalVoteFactory,
    MembershipFactory,
    ParticipantFactory,
    UserFactory,
)

Status = EnsembleSession.Status
EXPORTS = ["export_json", "export_csv", "export_md"]
STARTED_AT = datetime.datetime(2030, 3, 4, 9, 0, tzinfo=datetime.UTC)

MUST_OPEN = "Export 5,000 invoices without a timeout"
MUST_PROBLEM = "The download button is reachable by keyboard"
COVERED = "Totals in the export match the ledger"
SKIPPED = "Exports in Japanese yen"

TRICKY = 'Totals: 1,000.00 vs "1 000,00"\nsecond line; €, ü, 日本語'
SCRIPT = "<script>alert('x')</script> in the filename"


def url(name: str, session) -> str:
    return reverse(name, kwargs={"session_id": session.pk})


def post_note(session, author, text: str, kind: str, *, minute: int, goal=None) -> Note:
    data = {"client_id": uuid.uuid4().hex, "kind": kind, "text": text}
    if goal is not None:
        data["goal"] = goal.pk
    note, _ = notes.post_note(session=session, author=author, data=data)
    # A known moment, so that the elapsed time is exact.
    Note.objects.filter(pk=note.pk).update(
        created_at=STARTED_AT + datetime.timedelta(minutes=minute, seconds=7)
    )
    return note


def go_live(session) -> EnsembleSession:
    EnsembleSession.objects.filter(pk=session.pk).update(status=Status.LIVE, started_at=STARTED_AT)
    session.refresh_from_db()
    return session


@pytest.fixture
def goals(session, facilitator, teammate):
    must_open = GoalFactory(session=session, author=teammate, text=MUST_OPEN, must_cover=True)
    covered = GoalFactory(
        session=session,
        author=facilitator,
        text=COVERED,
        perspective=Goal.Perspective.ENGINEERING,
        status=Goal.Status.COVERED,
    )
    skipped = GoalFactory(session=session, author=teammate, text=SKIPPED, status="skipped")
    must_problem = GoalFactory(
        session=session,
        author=facilitator,
        text=MUST_PROBLEM,
        perspective=Goal.Perspective.DESIGN,
        must_cover=True,
        status=Goal.Status.PROBLEM,
    )
    GoalVoteFactory(goal=covered, user=teammate)
    GoalVoteFactory(goal=covered, user=facilitator)
    return {"must_open": must_open, "covered": covered, "skipped": skipped, "problem": must_problem}


@pytest.fixture
def live_session(session, facilitator, teammate, goals):
    """Live, with notes of several kinds (one deleted) from dana and sam."""
    ParticipantFactory(session=session, user=facilitator, role=Participant.Role.NAVIGATOR)
    ParticipantFactory(session=session, user=teammate, role=Participant.Role.DRIVER)
    go_live(session)
    post_note(session, teammate, "Looks fine so far", "observation", minute=1)
    post_note(session, teammate, TRICKY, "bug", minute=5, goal=goals["covered"])
    deleted = post_note(session, facilitator, "Typo, ignore", "idea", minute=6)
    notes.delete_note(note=deleted, by=facilitator)
    post_note(session, facilitator, SCRIPT, "friction", minute=62, goal=goals["problem"])
    return session


@pytest.fixture
def ended_session(live_session, facilitator):
    live.end_session(session=live_session, by=facilitator)
    live_session.refresh_from_db()
    return live_session


@pytest.fixture
def decided_session(ended_session, facilitator, teammate):
    outcome.add_follow_up(
        session=ended_session,
        by=facilitator,
        data={
            "text": "Fix the rounding of totals",
            "owner": teammate.pk,
            "due": "2030-04-01",
            "tracker_url": "https://tracker.example/INV-42",
        },
    )
    outcome.record_decision(
        session=ended_session,
        by=facilitator,
        data={"outcome": "go_with_conditions", "rationale": "Ship once <b>rounding</b> is fixed"},
    )
    ended_session.refresh_from_db()
    return ended_session


def download(client, name: str, session):
    response = client.get(url(name, session))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"].endswith("charset=utf-8")
    return downloaded(response)


# --- A structural check of the contract's schema ---------------------------------------


def iso_8601(value) -> datetime.datetime:
    assert isinstance(value, str), value
    parsed = datetime.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} has no time zone"
    return parsed


def keys_and_types(obj, spec: dict) -> None:
    assert isinstance(obj, dict)
    assert set(obj) == set(spec), f"keys {sorted(obj)} differ from {sorted(spec)}"
    for key, kinds in spec.items():
        assert isinstance(obj[key], kinds), f"{key}={obj[key]!r} is not {kinds}"


NULL = type(None)


def assert_matches_contract(data) -> None:
    """`export.json` has exactly the keys and types of the contract's example."""
    keys_and_types(
        data,
        {
            "schema": str,
            "session": dict,
            "goals": list,
            "participants": list,
            "notes": list,
            "decision": (dict, NULL),
            "follow_ups": list,
            # An addition to the contract's example: alerts from monitoring.
            "alerts": list,
        },
    )
    assert data["schema"] == "ensemble.session/1"
    session = data["session"]
    keys_and_types(
        session,
        {
            "id": str,
            "title": str,
            "feature": dict,
            "status": str,
            "started_at": (str, NULL),
            "ended_at": (str, NULL),
        },
    )
    uuid.UUID(session["id"])
    keys_and_types(session["feature"], {"name": str, "flag_key": str})
    for moment in ("started_at", "ended_at"):
        if session[moment] is not None:
            iso_8601(session[moment])
    for goal in data["goals"]:
        keys_and_types(goal, {"text": str, "perspective": str, "votes": int, "status": str})
    for participant in data["participants"]:
        keys_and_types(participant, {"username": str, "role": str})
    for note in data["notes"]:
        keys_and_types(
            note,
            {
                "seq": int,
                "kind": str,
                "text": str,
                "author": (str, NULL),
                "created_at": str,
                "goal": (str, NULL),
            },
        )
        iso_8601(note["created_at"])
    seqs = [note["seq"] for note in data["notes"]]
    assert seqs == sorted(seqs), "notes are not in seq order"
    if data["decision"] is not None:
        keys_and_types(
            data["decision"],
            {"outcome": str, "rationale": str, "decided_by": (str, NULL), "decided_at": str},
        )
        assert data["decision"]["outcome"] in {"go", "go_with_conditions", "no_go"}
        iso_8601(data["decision"]["decided_at"])
    for item in data["follow_ups"]:
        keys_and_types(item, {"text": str, "owner": (str, NULL), "due": (str, NULL), "done": bool})
        if item["due"] is not None:
            datetime.date.fromisoformat(item["due"])


# --- export.json ------------------------------------------------------------------------


def test_export_json_follows_the_contract(decided_session, facilitator_client):
    data = json.loads(download(facilitator_client, "export_json", decided_session))

    assert_matches_contract(data)
    assert data["session"] == {
        "id": str(decided_session.pk),
        "title": "Bulk export walkthrough",
        "feature": {"name": "Bulk invoice export", "flag_key": "bulk-invoice-export"},
        "status": "decided",
        "started_at": STARTED_AT.isoformat(),
        "ended_at": decided_session.ended_at.isoformat(),
    }
    assert [(n["seq"], n["kind"], n["author"], n["goal"]) for n in data["notes"]] == [
        (1, "observation", "sam", None),
        (2, "bug", "sam", COVERED),
        (4, "friction", "dana", MUST_PROBLEM),
    ]
    assert data["notes"][1]["text"] == TRICKY
    assert iso_8601(data["notes"][2]["created_at"]) == STARTED_AT + datetime.timedelta(
        minutes=62, seconds=7
    )
    assert {goal["text"]: (goal["votes"], goal["status"]) for goal in data["goals"]} == {
        MUST_OPEN: (0, "open"),
        MUST_PROBLEM: (0, "problem"),
        COVERED: (2, "covered"),
        SKIPPED: (0, "skipped"),
    }
    assert sorted(map(tuple, (p.values() for p in data["participants"]))) == [
        ("dana", "navigator"),
        ("sam", "driver"),
    ]
    decision = data["decision"]
    assert (decision["outcome"], decision["rationale"], decision["decided_by"]) == (
        "go_with_conditions",
        "Ship once <b>rounding</b> is fixed",
        "dana",
    )
    assert data["follow_ups"] == [
        {"text": "Fix the rounding of totals", "owner": "sam", "due": "2030-04-01", "done": False}
    ]


def test_export_json_has_no_decision_until_one_is_recorded(ended_session, facilitator_client):
    data = json.loads(download(facilitator_client, "export_json", ended_session))

    assert_matches_contract(data)
    assert data["decision"] is None
    assert data["follow_ups"] == []
    assert data["session"]["status"] == "review"


def test_export_json_of_a_session_not_started_has_null_times(session, facilitator_client):
    data = json.loads(download(facilitator_client, "export_json", session))

    assert_matches_contract(data)
    assert (data["session"]["started_at"], data["session"]["ended_at"]) == (None, None)
    assert data["notes"] == []


def test_the_latest_revision_is_the_exported_decision(decided_session, facilitator_client):
    facilitator = decided_session.facilitator
    outcome.record_decision(
        session=decided_session,
        by=facilitator,
        data={"outcome": "go", "rationale": "Fixed", "revision_reason": "Rounding fixed"},
    )

    data = json.loads(download(facilitator_client, "export_json", decided_session))

    assert (data["decision"]["outcome"], data["decision"]["rationale"]) == ("go", "Fixed")


# --- export.csv -------------------------------------------------------------------------


def test_export_csv_reads_back_one_row_per_note(decided_session, teammate_client):
    body = download(teammate_client, "export_csv", decided_session)

    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[0] == ["seq", "time", "elapsed", "kind", "author", "goal", "text"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "4"]
    by_seq = {row[0]: row for row in rows[1:]}
    assert by_seq["2"][2:] == ["0:05:07", "bug", "sam", COVERED, TRICKY]
    assert by_seq["4"][2:] == ["1:02:07", "friction", "dana", MUST_PROBLEM, SCRIPT]
    assert by_seq["1"][5] == ""
    assert datetime.datetime.fromisoformat(by_seq["1"][1]) == STARTED_AT + datetime.timedelta(
        minutes=1, seconds=7
    )
    assert all(len(row) == 7 for row in rows)


def test_export_csv_of_a_session_without_notes_is_the_header(session, facilitator_client):
    body = download(facilitator_client, "export_csv", session)

    assert list(csv.reader(io.StringIO(body, newline=""))) == [
        ["seq", "time", "elapsed", "kind", "author", "goal", "text"]
    ]


# --- export.md --------------------------------------------------------------------------


def test_export_md_is_a_report_of_the_whole_session(decided_session, facilitator_client):
    md = download(facilitator_client, "export_md", decided_session)

    lines = md.splitlines()
    assert lines[0] == "# Bulk export walkthrough"
    sections = [line for line in lines if line.startswith("## ")]
    assert sections == [
        "## Decision",
        "## Goals coverage",
        "## Bugs and friction",
        "## Follow-ups",
        "## Alerts",
        "## Notes by kind",
    ]
    assert "**Go with conditions** — Ship once &lt;b&gt;rounding&lt;/b&gt; is fixed" in lines
    assert f"- [never touched] {MUST_OPEN} (must cover)" in lines
    assert f"- [problem found] {MUST_PROBLEM} (must cover)" in lines
    assert f"- [covered] {COVERED}" in lines
    assert lines.index(f"- [never touched] {MUST_OPEN} (must cover)") < lines.index(
        f"- [covered] {COVERED}"
    )
    assert (
        "- [ ] Fix the rounding of totals — sam, due 2030-04-01 (https://tracker.example/INV-42)"
        in lines
    )
    # Multi-line text stays on its bullet's line.
    flat_tricky = 'Totals: 1,000.00 vs "1 000,00" second line; €, ü, 日本語'
    assert f"- #2 Bug: {flat_tricky}" in lines
    notes_part = md.split("## Notes by kind")[1]
    assert notes_part.index("### Bug") < notes_part.index("### Friction")
    assert notes_part.index("### Friction") < notes_part.index("### Observation")
    assert "- #1 sam: Looks fine so far" in lines
    assert "Typo, ignore" not in md


def test_export_md_neutralises_html_in_user_text(decided_session, facilitator, facilitator_client):
    outcome.add_follow_up(
        session=decided_session,
        by=facilitator,
        data={
            "text": "Check <img src=x onerror=alert(1)>",
            "owner": facilitator.pk,
            "tracker_url": "https://tracker.example/<b>INV-43</b>",
        },
    )

    md = download(facilitator_client, "export_md", decided_session)

    assert "&lt;script&gt;alert('x')&lt;/script&gt; in the filename" in md
    assert "Check &lt;img src=x onerror=alert(1)&gt;" in md
    for tag in ("<script", "<img", "<b>"):
        assert tag not in md


def test_export_md_says_when_nothing_is_decided_yet(ended_session, facilitator_client):
    md = download(facilitator_client, "export_md", ended_session)

    assert "Not decided yet." in md.splitlines()


# --- Who may export ---------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPORTS)
def test_an_outsider_gets_404_for_every_export(decided_session, outsider_client, name):
    assert outsider_client.get(url(name, decided_session)).status_code == 404


@pytest.mark.parametrize("name", EXPORTS)
def test_anonymous_users_are_sent_to_log_in(decided_session, client, name):
    target = url(name, decided_session)

    response = client.get(target)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={target}"


# --- The review page --------------------------------------------------------------------


def section(page: str, anchor: str) -> str:
    """The HTML of one section of the review page."""
    start = page.index(f'<section id="{anchor}"')
    return page[start : page.index("</section>", start)]


def test_review_shows_coverage_must_cover_first_and_never_touched(decided_session, teammate_client):
    page = teammate_client.get(url("review", decided_session)).content.decode()

    coverage = section(page, "coverage")
    positions = [coverage.index(text) for text in (MUST_PROBLEM, MUST_OPEN, COVERED, SKIPPED)]
    assert positions == sorted(positions)
    row = coverage[coverage.index(MUST_OPEN) :].split("</tr>")[0]
    assert "<td>never touched</td>" in row
    assert "<td>problem found</td>" in coverage[coverage.index(MUST_PROBLEM) :].split("</tr>")[0]


def test_review_groups_notes_by_kind_bugs_and_friction_first(decided_session, teammate_client):
    page = teammate_client.get(url("review", decided_session)).content.decode()

    by_kind = section(page, "notes-by-kind")
    headings = [by_kind.index(h) for h in ("Bug (1)", "Friction (1)", "Observation (1)")]
    assert headings == sorted(headings)
    assert "Typo, ignore" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in by_kind
    assert "<script>alert" not in page


def test_review_timeline_shows_elapsed_time(decided_session, teammate_client):
    page = teammate_client.get(url("review", decided_session)).content.decode()

    timeline = section(page, "timeline")
    assert '<td class="num">0:01:07</td>' in timeline
    assert '<td class="num">1:02:07</td>' in timeline
    assert timeline.index("0:01:07") < timeline.index("0:05:07") < timeline.index("1:02:07")
    assert "dana ended the session" in timeline


def test_review_is_a_partial_review_while_live(live_session, teammate_client):
    response = teammate_client.get(url("review", live_session))

    assert response.status_code == 200
    page = response.content.decode()
    assert "The session is live: this is a partial review." in page
    assert "Looks fine so far" in section(page, "timeline")
    assert "No decision yet." in page
    # Nobody votes or decides while the session runs.
    assert "Send my confidence" not in page
    assert "Record decision" not in page


# --- Queries do not grow with the notes -------------------------------------------------


def add_people_and_notes(session, count: int, team) -> None:
    """More authors, goals, notes, follow-ups and votes: everything a page lists."""
    for index in range(count):
        author = UserFactory()
        MembershipFactory(team=team, user=author)
        ParticipantFactory(session=session, user=author)
        goal = GoalFactory(session=session, author=author)
        GoalVoteFactory(goal=goal, user=author)
        post_note(session, author, f"Note {index}", "bug", minute=index, goal=goal)
        # Votes are given in review; the session then goes on, for the next notes.
        session.status = Status.REVIEW
        outcome.cast_vote(session=session, voter=author, data={"score": 3, "comment": "ok"})
        session.status = Status.LIVE
        outcome.add_follow_up(
            session=session,
            by=session.facilitator,
            data={"text": f"Follow-up {index}", "owner": author.pk, "due": "2030-01-01"},
        )


@pytest.mark.parametrize("name", ["review", *EXPORTS])
def test_queries_do_not_grow_with_the_notes(
    live_session, facilitator, team, name, django_assert_max_num_queries
):
    client = client_for(facilitator)
    add_people_and_notes(live_session, 2, team)
    EnsembleSession.objects.filter(pk=live_session.pk).update(votes_revealed=True)

    def fetched() -> str:
        # An export is read as it streams: its queries run while it is read.
        response = client.get(url(name, live_session))
        assert response.status_code == 200
        return downloaded(response) if name in EXPORTS else response.content.decode()

    with CaptureQueriesContext(connection) as few:
        fetched()

    add_people_and_notes(live_session, 20, team)

    with django_assert_max_num_queries(len(few)):
        body = fetched()
    assert "Note 19" in body
