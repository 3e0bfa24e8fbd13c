"""Alert payloads as monitoring tools send them, written after the shapes their
public documentation gives: a generic JSON alert, Sentry's integration-platform
issue and metric alerts and its older webhook plugin, and Datadog's webhook
integration (its default payload, and one with the variables teams add).

Each function returns a fresh dict, so a test may change one freely."""

from __future__ import annotations

from typing import Any

# --- Generic ----------------------------------------------------------------------------


def generic(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Invoice export failed: timeout after 30 s",
        "level": "error",
        "url": "https://logs.acme.example/search?q=invoice-export%20timeout",
        "source": "Loki",
        "tenant": "globex",
        **overrides,
    }


# --- Sentry: integration platform ---------------------------------------------------------

# The headers Sentry sends with an integration's webhook.
SENTRY_ISSUE_HEADERS = {
    "Sentry-Hook-Resource": "event_alert",
    "Sentry-Hook-Timestamp": "1763371502",
    "Request-ID": "6f0a0e3b-4c33-4b2b-9a1d-2f1f4c5f8e10",
}
SENTRY_METRIC_HEADERS = {**SENTRY_ISSUE_HEADERS, "Sentry-Hook-Resource": "metric_alert"}


def sentry_issue_alert(
    *,
    title: str = "TimeoutError: Invoice export exceeded 30000 ms",
    level: str = "error",
    tags: list | None = None,
    web_url: str | None = "https://acme.sentry.io/issues/4512398761/events/9f1c2b7e5d8a4c6b/",
) -> dict[str, Any]:
    """An issue alert rule's action: `data.event` is the event that triggered it."""
    if tags is None:
        tags = [
            ["browser", "Chrome 131.0.0"],
            ["environment", "production"],
            ["level", level],
            ["release", "billing@2026.11.3"],
            ["tenant", "globex"],
            ["transaction", "/invoices/export"],
        ]
    event: dict[str, Any] = {
        "_ref": 4506872,
        "_ref_version": 2,
        "contexts": {
            "browser": {"name": "Chrome", "type": "browser", "version": "131.0.0"},
            "os": {"name": "Mac OS X", "type": "os", "version": "14.6.1"},
        },
        "culprit": "billing.exports.invoices in render_batch",
        "datetime": "2026-11-17T09:25:02.148000Z",
        "dist": None,
        "event_id": "9f1c2b7e5d8a4c6b8e0a1d2c3b4a5f60",
        "exception": {
            "values": [
                {
                    "type": "TimeoutError",
                    "value": "Invoice export exceeded 30000 ms",
                    "mechanism": {"type": "generic", "handled": False},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "billing/exports/invoices.py",
                                "function": "render_batch",
                                "lineno": 212,
                                "in_app": True,
                            }
                        ]
                    },
                }
            ]
        },
        "fingerprint": ["{{ default }}"],
        "grouping_config": {"enhancements": "eJybzDRxY25", "id": "newstyle:2023-01-11"},
        "hashes": ["c4b3d1f0a9e8d7c6b5a4f3e2d1c0b9a8"],
        "issue_url": "https://sentry.io/api/0/issues/4512398761/",
        "issue_id": "4512398761",
        "key_id": "3129467",
        "level": level,
        "location": "billing/exports/invoices.py",
        "logger": "",
        "message": "",
        "metadata": {
            "filename": "billing/exports/invoices.py",
            "type": "TimeoutError",
            "value": "Invoice export exceeded 30000 ms",
        },
        "platform": "python",
        "project": 4508123,
        "received": 1763371502.3,
        "release": "billing@2026.11.3",
        "sdk": {"name": "sentry.python.django", "version": "2.19.0"},
        "tags": tags,
        "timestamp": 1763371502.148,
        "title": title,
        "type": "error",
        "url": "https://sentry.io/api/0/projects/acme/billing/events/9f1c2b7e5d8a4c6b/",
        "user": {"id": "7731", "email": "ap-clerk@globex.example", "ip_address": "203.0.113.7"},
        "version": "7",
    }
    if web_url is not None:
        event["web_url"] = web_url
    return {
        "action": "triggered",
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {
            "event": event,
            "triggered_rule": "Invoice export errors",
            "issue_alert": {
                "title": "Invoice export errors",
                "settings": [{"name": "channel", "value": "#billing-alerts"}],
            },
        },
        "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},
    }


def sentry_metric_alert(action: str = "critical") -> dict[str, Any]:
    """A metric alert rule changing state: the action is critical, warning or resolved."""
    state = {"critical": "Critical", "warning": "Warning", "resolved": "Resolved"}[action]
    return {
        "action": action,
        "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {
            "description_text": (
                "312 events in the last 10 minutes\nFilter: transaction:/invoices/export"
            ),
            "description_title": f"{state}: Invoice export error rate",
            "metric_alert": {
                "alert_rule": {
                    "aggregate": "count()",
                    "created_by": None,
                    "dataset": "events",
                    "environment": "production",
                    "id": "3811",
                    "name": "Invoice export error rate",
                    "organization_id": "1184",
                    "projects": ["billing"],
                    "query": "transaction:/invoices/export",
                    "resolve_threshold": None,
                    "threshold_type": 0,
                    "time_window": 10.0,
                    "triggers": [
                        {
                            "label": "critical",
                            "alert_threshold": 200.0,
                            "threshold_type": 0,
                            "actions": [{"type": "sentry_app", "target_type": "sentry_app"}],
                        },
                        {"label": "warning", "alert_threshold": 100.0, "threshold_type": 0},
                    ],
                },
                "date_closed": None,
                "date_created": "2026-11-17T09:20:00.000000Z",
                "date_detected": "2026-11-17T09:20:00.000000Z",
                "date_started": "2026-11-17T09:20:00.000000Z",
                "id": "921",
                "identifier": "57",
                "organization_id": "1184",
                "projects": ["billing"],
                "status": 0,
                "status_method": 3,
                "title": "Invoice export error rate",
                "type": 2,
            },
            "web_url": "https://acme.sentry.io/alerts/rules/details/3811/?alert=921",
        },
        "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},
    }


def sentry_plugin(**overrides: Any) -> dict[str, Any]:
    """What Sentry's older WebHooks plugin (a project's legacy integration) posts."""
    return {
        "id": "4512398761",
        "project": "billing",
        "project_name": "Billing",
        "project_slug": "billing",
        "logger": None,
        "level": "warning",
        "culprit": "billing.exports.invoices in render_batch",
        "message": "Slow invoice export: 12.4 s for 480 invoices",
        "url": "https://acme.sentry.io/issues/4512398761/?referrer=webhooks_plugin",
        "triggering_rules": ["Slow exports"],
        "event": {
            "event_id": "0d8a5b8c1f2e4a3b9c7d6e5f4a3b2c1d",
            "level": "warning",
            "version": "7",
            "type": "default",
            "logentry": {"formatted": "Slow invoice export: 12.4 s for 480 invoices"},
            "logger": "billing.exports",
            "platform": "python",
            "timestamp": 1763371502.148,
            "environment": "production",
            "tags": [
                ["environment", "production"],
                ["level", "warning"],
                ["customer", "acme-internal"],
            ],
            "title": "Slow invoice export: 12.4 s for 480 invoices",
        },
        **overrides,
    }


# --- Datadog ------------------------------------------------------------------------------


def datadog_default(*, title: str = "[Triggered] Invoice export error rate above 5%") -> dict:
    """The webhook integration's default payload, as Datadog fills in its variables
    ($EVENT_MSG, $LAST_UPDATED, $EVENT_TYPE, $EVENT_TITLE, $DATE, $ORG_ID,
    $ORG_NAME, $ID)."""
    return {
        "body": (
            "%%%\nError rate of invoice exports is 7.2% (above 5%) over the last 5 minutes.\n\n"
            "@webhook-ensemble\n\n[[Monitor Status](https://app.datadoghq.eu/monitors/8812345)]"
            "\n%%%"
        ),
        "last_updated": "1763371502000",
        "event_type": "query_alert_monitor",
        "title": title,
        "date": "1763371502000",
        "org": {"id": "418211", "name": "Acme Billing"},
        "id": "7710457263891234567",
    }


def datadog_custom(
    *,
    alert_type: str = "error",
    alert_transition: str = "Triggered",
    tags: str = "env:production,service:billing,tenant:acme-internal",
    link: str = "https://app.datadoghq.eu/event/event?id=7710457263891234567",
) -> dict:
    """The default payload plus variables a team often adds: $ALERT_TYPE,
    $ALERT_TRANSITION, $LINK and $TAGS."""
    return {
        **datadog_default(title=f"[{alert_transition}] Invoice export p95 latency above 10 s"),
        "alert_type": alert_type,
        "alert_transition": alert_transition,
        "link": link,
        "tags": tags,
    }
