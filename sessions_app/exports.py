"""A session's exports: JSON (the contract's schema), Markdown (a report to paste
into a tracker or a wiki) and CSV (one row per note). All read one Report, and
the notes a batch at a time: each is a generator of text chunks, streamed as it
is written, so a session of 10,000 notes starts downloading at once and is
never held whole in memory."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from html import escape
from typing import Any
from urllib.parse import quote

from sessions_app import review
from sessions_app.models import EnsembleSession, Note
from sessions_app.review import Report, clock

SCHEMA = "ensemble.session/1"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _username(user) -> str | None:
    return user.get_username() if user else None


def _note_json(note: Note) -> dict[str, Any]:
    return {
        "seq": note.seq,
        "kind": note.kind,
        "text": note.text,
        "author": _username(note.author),
        "created_at": _iso(note.created_at),
        "goal": note.goal.text if note.goal else None,
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def json_chunks(session: EnsembleSession) -> Iterator[str]:
    """The export as `json.dumps(…, indent=2)` would write it whole: the rest
    of the document around the notes, which are written a batch at a time."""
    # Only the top-level key is written with this exact text: in any string
    # value the quotes would be escaped.
    head, tail = _json(_to_json(review.build(session))).split('"notes": []', 1)
    yield head + '"notes": ['
    first = True
    for batch in review.note_batches(session):
        items = []
        for note in batch:
            # One item of a list nested in the document: indented four more.
            item = _json(_note_json(note)).replace("\n", "\n    ")
            items.append(("\n    " if first else ",\n    ") + item)
            first = False
        yield "".join(items)
    yield ("]" if first else "\n  ]") + tail


def _to_json(report: Report) -> dict[str, Any]:
    session = report.session
    decision = report.decision
    return {
        "schema": SCHEMA,
        "session": {
            "id": str(session.pk),
            "title": session.title,
            "feature": {"name": session.feature.name, "flag_key": session.feature.flag_key},
            "status": session.status,
            "started_at": _iso(session.started_at),
            "ended_at": _iso(session.ended_at),
        },
        "goals": [
            {
                "text": item.goal.text,
                "perspective": item.goal.perspective,
                "votes": item.goal.vote_count,
                "status": item.goal.status,
            }
            for item in report.goals
        ],
        "participants": [
            {"username": _username(p.user), "role": p.role} for p in report.participants
        ],
        # Streamed in by json_chunks.
        "notes": [],
        "decision": {
            "outcome": decision.outcome,
            "rationale": decision.rationale,
            "decided_by": _username(decision.decided_by),
            "decided_at": _iso(decision.decided_at),
        }
        if decision
        else None,
        "follow_ups": [
            {
                "text": item.text,
                "owner": _username(item.owner),
                "due": _iso(item.due),
                "done": item.done,
            }
            for item in report.follow_ups
        ],
        # Added to the contract's schema: alerts from monitoring, as they arrived.
        "alerts": [
            {
                "received_at": _iso(event.alert.received_at),
                "level": event.alert.level,
                "title": event.alert.title,
                "url": event.alert.url or None,
                "source": event.alert.source or None,
                "tenant": event.alert.tenant or None,
                "other_tenant": event.other_tenant,
                "after_seq": event.after_seq,
            }
            for event in report.alerts
        ],
    }


# What makes Markdown out of plain text mid-line: links and images ([ ] !),
# emphasis and code (* _ `), tables and strikethrough (| ~), headings (#), and
# the backslash itself. HTML (< > &) becomes entities instead.
_MARKDOWN = re.compile(r"([\\`*_\[\]!#|~])")


def _md(text: str) -> str:
    """User text on one line of Markdown that stays text: a link, an image or
    raw HTML written into a note shows as written, never rendered (a wiki that
    renders inline HTML shows it as text too)."""
    return " ".join(escape(_MARKDOWN.sub(r"\\\1", text), quote=False).split())


def _md_url(url: str) -> str:
    """A stored http(s) link, shown as a bare URL: whatever could close the
    parentheses around it or start Markdown is percent-encoded."""
    return quote(url, safe=":/?#@$&+,;=%-._~")


def _markdown_lines(session: EnsembleSession) -> Iterator[str]:
    report = review.build(session)
    lines = [
        f"# {_md(session.title)}",
        "",
        f"Feature: {_md(session.feature.name)} (flag `{_md(session.feature.flag_key)}`) · "
        f"tenant {_md(session.internal_tenant)} · status: {session.get_status_display()}",
        "",
        "## Decision",
        "",
    ]
    if report.decision:
        d = report.decision
        lines += [
            f"**{d.get_outcome_display()}** — {_md(d.rationale)}",
            f"({_md(_username(d.decided_by) or 'unknown')}, {d.decided_at:%Y-%m-%d %H:%M} UTC)",
        ]
    else:
        lines.append("Not decided yet.")
    lines += ["", "## Goals coverage", ""]
    for item in report.goals:
        must = " (must cover)" if item.goal.must_cover else ""
        lines.append(f"- [{item.coverage}] {_md(item.goal.text)}{must}")
    if not report.goals:
        lines.append("No goals.")
    lines += ["", "## Bugs and friction", ""]
    yield from lines
    bugs = False
    for batch in review.note_batches(session, kinds=("bug", "friction")):
        bugs = True
        yield from (f"- #{n.seq} {n.get_kind_display()}: {_md(n.text)}" for n in batch)
    if not bugs:
        yield "None."
    lines = ["", "## Follow-ups", ""]
    for item in report.follow_ups:
        box = "x" if item.done else " "
        owner = f" — {_md(_username(item.owner))}" if item.owner else ""
        due = f", due {item.due:%Y-%m-%d}" if item.due else ""
        link = f" ({_md_url(item.tracker_url)})" if item.tracker_url else ""
        lines.append(f"- [{box}] {_md(item.text)}{owner}{due}{link}")
    if not report.follow_ups:
        lines.append("None.")
    lines += ["", "## Alerts", ""]
    for event in report.alerts:
        alert = event.alert
        where = f", tenant {_md(alert.tenant)}" if alert.tenant else ""
        elsewhere = " (not our tenant)" if event.other_tenant else ""
        link = f" ({_md_url(alert.url)})" if alert.url else ""
        lines.append(
            f"- {alert.received_at:%H:%M:%S} {alert.get_level_display()}: "
            f"{_md(alert.title)}{link}{where}{elsewhere}"
        )
    if not report.alerts:
        lines.append("None.")
    lines += ["", "## Notes by kind"]
    yield from lines
    for group in report.kinds:
        yield from ("", f"### {group.label}", "")
        for batch in review.note_batches(session, kinds=(group.kind,)):
            for n in batch:
                yield f"- #{n.seq} {_md(_username(n.author) or '?')}: {_md(n.text)}"


def markdown_chunks(session: EnsembleSession) -> Iterator[str]:
    """The report, each line ending in a newline, sent some lines at a time."""
    lines: list[str] = []
    for line in _markdown_lines(session):
        lines.append(line)
        if len(lines) == review.NOTE_BATCH:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


CSV_HEADER = ["seq", "time", "elapsed", "kind", "author", "goal", "text"]
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """User text as a CSV cell that a spreadsheet shows instead of running:
    a leading apostrophe makes it text (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_chunks(session: EnsembleSession) -> Iterator[str]:
    """The header, then the rows of each batch of notes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    yield out.getvalue()
    for batch in review.note_batches(session):
        out = io.StringIO()
        writer = csv.writer(out)
        for note in batch:
            writer.writerow(
                [
                    note.seq,
                    _iso(note.created_at),
                    clock(note.created_at - session.started_at) if session.started_at else "",
                    note.kind,
                    _cell(_username(note.author) or ""),
                    _cell(note.goal.text) if note.goal else "",
                    _cell(note.text),
                ]
            )
        yield out.getvalue()
