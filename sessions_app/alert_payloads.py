"""What monitoring tools post to an alert webhook, read into one shape.

Three shapes are understood:
- generic JSON: {"title": …, "level"?, "url"?, "source"?, "tenant"?};
- Sentry: issue alerts and metric alerts from an integration (the body has
  `action` and `data`), and the older webhook plugin (`project_slug`, `event`);
- Datadog: the webhook integration's default payload (`event_type`, `title`,
  `body`, `org`…), plus the template variables a team often adds (`alert_type`,
  `alert_transition`, `link`, `tags`).

Nothing here is trusted: every value is a string cut to size, a URL is kept
only if it is http(s), and the templates escape whatever is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from sessions_app.models import Alert
from sessions_app.models.sessions import http_url_validator

Level = Alert.Level

LEVELS = {
    "fatal": Level.CRITICAL,
    "critical": Level.CRITICAL,
    "p1": Level.CRITICAL,
    "error": Level.ERROR,
    "alert": Level.ERROR,
    "triggered": Level.ERROR,
    "re-triggered": Level.ERROR,
    "p2": Level.ERROR,
    "warning": Level.WARNING,
    "warn": Level.WARNING,
    "re-warn": Level.WARNING,
    "no data": Level.WARNING,
    "re-no data": Level.WARNING,
    "p3": Level.WARNING,
    "info": Level.INFO,
    "debug": Level.INFO,
    "success": Level.INFO,
    "recovered": Level.INFO,
    "resolved": Level.INFO,
    "p4": Level.INFO,
    "p5": Level.INFO,
}
# Tags that name the tenant an alert is about.
TENANT_TAGS = ("tenant", "tenant_id", "customer", "account", "org")


class UnknownShape(ValueError):
    """The body is JSON but none of the shapes we read."""


@dataclass(frozen=True)
class ParsedAlert:
    shape: str
    title: str
    level: str = Level.ERROR
    url: str = ""
    source: str = ""
    tenant: str = ""


def parse(body: Any, headers: dict[str, str] | None = None) -> ParsedAlert:
    if not isinstance(body, dict):
        raise UnknownShape("Send a JSON object.")
    headers = {key.lower(): value for key, value in (headers or {}).items()}
    if "sentry-hook-resource" in headers or _looks_like_sentry(body):
        return _sentry(body)
    if _looks_like_datadog(body):
        return _datadog(body)
    if "title" in body:
        return _generic(body)
    raise UnknownShape(
        'Unknown alert shape: send {"title": …} (with optional "level", "url", '
        '"source", "tenant"), or a Sentry or Datadog webhook.'
    )


# --- Generic ------------------------------------------------------------------


def _generic(body: dict) -> ParsedAlert:
    title = _text(body.get("title"), 300)
    if not title:
        raise UnknownShape('"title" must be a non-empty string.')
    level = body.get("level")
    if level is not None and _level(level) is None:
        raise UnknownShape(f'"level" must be one of: {", ".join(Level.values)}.')
    return ParsedAlert(
        shape=Alert.Shape.GENERIC,
        title=title,
        level=_level(level) or Level.ERROR,
        url=_url(body.get("url")),
        source=_text(body.get("source"), 100),
        tenant=_text(body.get("tenant"), 200),
    )


# --- Sentry -------------------------------------------------------------------


def _looks_like_sentry(body: dict) -> bool:
    data = body.get("data")
    integration = isinstance(data, dict) and (
        isinstance(data.get("event"), dict) or isinstance(data.get("metric_alert"), dict)
    )
    plugin = "project_slug" in body and isinstance(body.get("event"), dict)
    return integration or plugin


def _sentry(body: dict) -> ParsedAlert:
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("metric_alert"), dict):
        # A metric alert: the action is its state (critical, warning, resolved).
        title = _text(data.get("description_title"), 300) or _text(
            data["metric_alert"].get("title"), 300
        )
        return _sentry_alert(title, body.get("action"), data.get("web_url"), {})
    if isinstance(data, dict) and isinstance(data.get("event"), dict):
        event = data["event"]  # an issue alert from an integration
        title = _text(event.get("title"), 300) or _text(event.get("message"), 300)
        url = event.get("web_url") or event.get("issue_url")
        return _sentry_alert(title, event.get("level"), url, event)
    if isinstance(body.get("event"), dict):
        event = body["event"]  # the older webhook plugin
        title = _text(event.get("title"), 300) or _text(body.get("message"), 300)
        return _sentry_alert(title, body.get("level") or event.get("level"), body.get("url"), event)
    raise UnknownShape("A Sentry webhook without an event or a metric alert.")


def _sentry_alert(title: str, level: Any, url: Any, event: dict) -> ParsedAlert:
    if not title:
        raise UnknownShape("A Sentry alert without a title.")
    tags = _sentry_tags(event.get("tags"))
    return ParsedAlert(
        shape=Alert.Shape.SENTRY,
        title=title,
        level=_level(level) or Level.ERROR,
        url=_url(url),
        source="Sentry",
        tenant=_first_tag(tags),
    )


def _sentry_tags(tags: Any) -> dict[str, str]:
    """Sentry sends tags as [[key, value], …] (or, in places, a list of objects)."""
    found: dict[str, str] = {}
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, list | tuple) and len(tag) == 2:
            key, value = tag
        elif isinstance(tag, dict):
            key, value = tag.get("key"), tag.get("value")
        else:
            continue
        if isinstance(key, str) and isinstance(value, str | int):
            found[key.lower()] = str(value)
    return found


# --- Datadog ------------------------------------------------------------------

DATADOG_KEYS = {"event_type", "alert_type", "alert_transition", "last_updated", "org", "body"}


def _looks_like_datadog(body: dict) -> bool:
    return len(DATADOG_KEYS & body.keys()) >= 2


def _datadog(body: dict) -> ParsedAlert:
    title = _text(body.get("title") or body.get("alert_title") or body.get("event_title"), 300)
    if not title:
        raise UnknownShape("A Datadog webhook without a title: keep $EVENT_TITLE in the payload.")
    # The level: $ALERT_TYPE where the payload has it, else the transition that
    # Datadog writes at the start of the title, such as "[Recovered] …", or for
    # a multi alert "[Recovered on {host:…}] …".
    transition = body.get("alert_transition")
    if not transition and title.startswith("["):
        transition = title[1 : title.find("]")].split(" on {")[0] if "]" in title else None
    level = _level(body.get("alert_type")) or _level(transition) or Level.ERROR
    tags = _datadog_tags(body.get("tags")) | _datadog_tags(body.get("alert_scope"))
    return ParsedAlert(
        shape=Alert.Shape.DATADOG,
        title=title,
        level=level,
        url=_url(body.get("link") or body.get("url")),
        source="Datadog",
        tenant=_first_tag(tags),
    )


def _datadog_tags(tags: Any) -> dict[str, str]:
    """$TAGS is "key:value,key:value" (some teams send a list instead)."""
    items = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    found: dict[str, str] = {}
    for item in items:
        if isinstance(item, str) and ":" in item:
            key, _, value = item.strip().partition(":")
            found[key.lower()] = value
    return found


# --- Values -------------------------------------------------------------------


def _first_tag(tags: dict[str, str]) -> str:
    for name in TENANT_TAGS:
        if tags.get(name):
            return tags[name][:200]
    return ""


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return ""
    # One line: an alert title is shown in one line of the timeline.
    return " ".join(str(value).split())[:limit]


def _level(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return LEVELS.get(value.strip().lower())


def _url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 2000:
        return ""
    try:
        http_url_validator(value)
    except ValidationError:
        return ""  # a javascript: or ftp: link is dropped, the alert kept
    return value
