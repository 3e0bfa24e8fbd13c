"""A session's exports: JSON (the contract's schema), Markdown (a report to paste
into a tracker or a wiki) and CSV (one row per note). All read one Report."""

from __future__ import annotations

import csv
import io
import re
from html import escape
from typing import Any
from urllib.parse import quote

from sessions_app.review import Report, clock

SCHEMA = "ensemble.session/1"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _username(user) -> str | None:
    return user.get_username() if user else None


def to_json(report: Report) -> dict[str, Any]:
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
        "notes": [
            {
                "seq": note.seq,
                "kind": note.kind,
                "text": note.text,
                "author": _username(note.author),
                "created_at": _iso(note.created_at),
                "goal": note.goal.text if note.goal else None,
            }
            for note in report.notes
        ],
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


def to_markdown(report: Report) -> str:
    session = report.session
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
    bugs = [n for n in report.notes if n.kind in ("bug", "friction")]
    lines += ["", "## Bugs and friction", ""]
    lines += [f"- #{n.seq} {n.get_kind_display()}: {_md(n.text)}" for n in bugs] or ["None."]
    lines += ["", "## Follow-ups", ""]
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
    for label, notes in report.notes_by_kind:
        lines += ["", f"### {label}", ""]
        lines += [f"- #{n.seq} {_md(_username(n.author) or '?')}: {_md(n.text)}" for n in notes]
    return "\n".join(lines) + "\n"


CSV_HEADER = ["seq", "time", "elapsed", "kind", "author", "goal", "text"]
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """User text as a CSV cell that a spreadsheet shows instead of running:
    a leading apostrophe makes it text (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for note in report.notes:
        writer.writerow(
            [
                note.seq,
                _iso(note.created_at),
                clock(note.created_at - report.session.started_at)
                if report.session.started_at
                else "",
                note.kind,
                _cell(_username(note.author) or ""),
                _cell(note.goal.text) if note.goal else "",
                _cell(note.text),
            ]
        )
    return out.getvalue()
