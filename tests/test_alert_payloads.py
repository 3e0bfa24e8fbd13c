"""Reading what monitoring tools post: the generic JSON alert, Sentry's and
Datadog's webhooks, each into a title, a level, a link and a tenant; anything
else is an unknown shape."""

from __future__ import annotations

import pytest

from sessions_app.alert_payloads import ParsedAlert, UnknownShape, parse
from sessions_app.models import Alert
from tests import alert_samples as samples

Level = Alert.Level
Shape = Alert.Shape


# --- Generic -------------------------------------------------------------------------------


def test_a_generic_alert_keeps_every_field_it_carries():
    assert parse(samples.generic()) == ParsedAlert(
        shape=Shape.GENERIC,
        title="Invoice export failed: timeout after 30 s",
        level=Level.ERROR,
        url="https://logs.acme.example/search?q=invoice-export%20timeout",
        source="Loki",
        tenant="globex",
    )


def test_a_generic_alert_with_only_a_title_is_an_error_from_nowhere_in_particular():
    assert parse({"title": "Disk 91% full on db-2"}) == ParsedAlert(
        shape=Shape.GENERIC, title="Disk 91% full on db-2", level=Level.ERROR
    )


@pytest.mark.parametrize(
    ("given", "level"),
    [
        ("critical", Level.CRITICAL),
        ("fatal", Level.CRITICAL),
        ("error", Level.ERROR),
        ("warning", Level.WARNING),
        ("WARN", Level.WARNING),
        (" info ", Level.INFO),
        ("debug", Level.INFO),
    ],
)
def test_a_generic_alert_level_is_read_into_one_of_four(given, level):
    assert parse(samples.generic(level=given)).level == level


@pytest.mark.parametrize("level", ["bogus", 3, ["error"], ""])
def test_a_generic_alert_with_a_level_we_do_not_know_is_refused_with_the_levels_we_take(level):
    with pytest.raises(UnknownShape, match="critical, error, warning, info"):
        parse(samples.generic(level=level))


@pytest.mark.parametrize("title", ["", "   ", None, ["Export failed"], {"text": "x"}, True])
def test_a_generic_alert_without_a_usable_title_is_refused(title):
    with pytest.raises(UnknownShape, match="title"):
        parse(samples.generic(title=title))


def test_a_title_is_one_line_cut_to_300_characters():
    parsed = parse(samples.generic(title="Export\nfailed\t\tfor   tenant " + "x" * 400))
    assert parsed.title.startswith("Export failed for tenant xxx")
    assert len(parsed.title) == 300


@pytest.mark.parametrize(
    "url",
    [
        "https://logs.acme.example/search?q=timeout",
        "http://grafana.internal.example:3000/d/exports",
    ],
)
def test_an_http_or_https_link_is_kept(url):
    assert parse(samples.generic(url=url)).url == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://files.acme.example/export.log",
        "//evil.example/phish",
        "not a link",
        "https://" + "a" * 2000 + ".example",
        42,
    ],
)
def test_any_other_link_is_dropped_and_the_alert_kept(url):
    parsed = parse(samples.generic(url=url))
    assert parsed.url == ""
    assert parsed.title == "Invoice export failed: timeout after 30 s"


def test_html_in_a_generic_alert_is_kept_as_text_for_the_templates_to_escape():
    parsed = parse(samples.generic(title="<img src=x onerror=alert(1)> export failed"))
    assert parsed.title == "<img src=x onerror=alert(1)> export failed"


# --- Sentry: issue alerts ------------------------------------------------------------------


def test_a_sentry_issue_alert_is_read_from_its_event():
    parsed = parse(samples.sentry_issue_alert(), samples.SENTRY_ISSUE_HEADERS)
    assert parsed == ParsedAlert(
        shape=Shape.SENTRY,
        title="TimeoutError: Invoice export exceeded 30000 ms",
        level=Level.ERROR,
        url="https://acme.sentry.io/issues/4512398761/events/9f1c2b7e5d8a4c6b/",
        source="Sentry",
        tenant="globex",
    )


def test_a_sentry_issue_alert_is_recognised_without_its_headers_too():
    assert parse(samples.sentry_issue_alert()).shape == Shape.SENTRY


@pytest.mark.parametrize(
    ("given", "level"),
    [
        ("fatal", Level.CRITICAL),
        ("error", Level.ERROR),
        ("warning", Level.WARNING),
        ("info", Level.INFO),
        ("debug", Level.INFO),
    ],
)
def test_a_sentry_event_level_maps_to_ours(given, level):
    assert parse(samples.sentry_issue_alert(level=given)).level == level


def test_a_sentry_issue_alert_without_a_web_url_links_to_the_issue():
    parsed = parse(samples.sentry_issue_alert(web_url=None))
    assert parsed.url == "https://sentry.io/api/0/issues/4512398761/"


@pytest.mark.parametrize(
    ("tags", "tenant"),
    [
        ([["environment", "production"], ["tenant", "globex"]], "globex"),
        ([["Tenant_ID", "t-4411"]], "t-4411"),
        ([["customer", "initech"], ["level", "error"]], "initech"),
        ([{"key": "account", "value": "umbrella"}], "umbrella"),
        ([["environment", "production"], ["level", "error"]], ""),
        ([], ""),
        ("tenant:globex", ""),  # not Sentry's shape for tags
        ([["tenant"], ["tenant", "a", "b"], "tenant", None], ""),
    ],
)
def test_the_tenant_comes_from_a_sentry_tag(tags, tenant):
    assert parse(samples.sentry_issue_alert(tags=tags)).tenant == tenant


def test_a_sentry_issue_alert_with_a_script_link_keeps_the_alert_without_the_link():
    body = samples.sentry_issue_alert(web_url="javascript:alert(1)")
    body["data"]["event"]["issue_url"] = "javascript:alert(2)"
    parsed = parse(body)
    assert (parsed.title, parsed.url) == ("TimeoutError: Invoice export exceeded 30000 ms", "")


def test_a_sentry_issue_alert_without_a_title_uses_the_message():
    body = samples.sentry_issue_alert(title="")
    body["data"]["event"]["message"] = "Export worker ran out of memory"
    assert parse(body).title == "Export worker ran out of memory"


def test_a_sentry_issue_alert_without_any_title_is_refused():
    body = samples.sentry_issue_alert(title="")
    with pytest.raises(UnknownShape, match="title"):
        parse(body)


# --- Sentry: metric alerts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "level", "title"),
    [
        ("critical", Level.CRITICAL, "Critical: Invoice export error rate"),
        ("warning", Level.WARNING, "Warning: Invoice export error rate"),
        ("resolved", Level.INFO, "Resolved: Invoice export error rate"),
    ],
)
def test_a_sentry_metric_alert_level_is_its_action(action, level, title):
    parsed = parse(samples.sentry_metric_alert(action), samples.SENTRY_METRIC_HEADERS)
    assert parsed == ParsedAlert(
        shape=Shape.SENTRY,
        title=title,
        level=level,
        url="https://acme.sentry.io/alerts/rules/details/3811/?alert=921",
        source="Sentry",
    )


def test_a_sentry_metric_alert_without_a_description_title_uses_the_rule_title():
    body = samples.sentry_metric_alert()
    del body["data"]["description_title"]
    assert parse(body).title == "Invoice export error rate"


# --- Sentry: the older webhook plugin ------------------------------------------------------


def test_the_sentry_webhook_plugin_payload_is_read():
    assert parse(samples.sentry_plugin()) == ParsedAlert(
        shape=Shape.SENTRY,
        title="Slow invoice export: 12.4 s for 480 invoices",
        level=Level.WARNING,
        url="https://acme.sentry.io/issues/4512398761/?referrer=webhooks_plugin",
        source="Sentry",
        tenant="acme-internal",
    )


def test_the_sentry_webhook_plugin_without_an_event_title_uses_the_message():
    body = samples.sentry_plugin(message="Export queue backed up")
    del body["event"]["title"]
    assert parse(body).title == "Export queue backed up"


def test_a_sentry_hook_without_an_event_or_a_metric_alert_is_an_unknown_shape():
    installation = {
        "action": "created",
        "data": {"installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"}},
    }
    with pytest.raises(UnknownShape):
        parse(installation, {"Sentry-Hook-Resource": "installation"})


# --- Datadog -------------------------------------------------------------------------------


def test_the_datadog_default_payload_is_read_from_its_title():
    assert parse(samples.datadog_default()) == ParsedAlert(
        shape=Shape.DATADOG,
        title="[Triggered] Invoice export error rate above 5%",
        level=Level.ERROR,
        source="Datadog",
    )


@pytest.mark.parametrize(
    ("title", "level"),
    [
        ("[Triggered] Invoice export error rate above 5%", Level.ERROR),
        ("[Re-Triggered] Invoice export error rate above 5%", Level.ERROR),
        ("[Warn] Invoice export error rate above 5%", Level.WARNING),
        ("[Recovered] Invoice export error rate above 5%", Level.INFO),
        ("[No Data] Invoice export error rate above 5%", Level.WARNING),
        # A multi alert names the group that changed: "[Triggered on {host:…}] …"
        ("[Triggered on {tenant:globex}] Invoice export error rate above 5%", Level.ERROR),
        ("[Recovered on {tenant:globex}] Invoice export error rate above 5%", Level.INFO),
        ("[Warn on {service:billing}] Invoice export error rate above 5%", Level.WARNING),
        ("Invoice export error rate above 5%", Level.ERROR),
        ("[Unclosed bracket: export error rate", Level.ERROR),
    ],
)
def test_the_datadog_default_payload_level_is_the_transition_in_its_title(title, level):
    assert parse(samples.datadog_default(title=title)).level == level


def test_a_datadog_payload_with_the_added_variables_keeps_link_and_tenant():
    assert parse(samples.datadog_custom()) == ParsedAlert(
        shape=Shape.DATADOG,
        title="[Triggered] Invoice export p95 latency above 10 s",
        level=Level.ERROR,
        url="https://app.datadoghq.eu/event/event?id=7710457263891234567",
        source="Datadog",
        tenant="acme-internal",
    )


@pytest.mark.parametrize(
    ("alert_type", "transition", "level"),
    [
        ("error", "Triggered", Level.ERROR),
        ("warning", "Warn", Level.WARNING),
        ("success", "Recovered", Level.INFO),
        ("info", "Renotify", Level.INFO),
        # Without $ALERT_TYPE, the transition says it.
        ("", "Recovered", Level.INFO),
        ("", "Warn", Level.WARNING),
        ("", "Re-Warn", Level.WARNING),
        ("", "No Data", Level.WARNING),
        ("", "Re-No Data", Level.WARNING),
        ("", "Re-Triggered", Level.ERROR),
    ],
)
def test_a_datadog_level_comes_from_alert_type_then_transition(alert_type, transition, level):
    body = samples.datadog_custom(alert_type=alert_type, alert_transition=transition)
    assert parse(body).level == level


@pytest.mark.parametrize(
    ("tags", "tenant"),
    [
        ("env:production,service:billing,tenant:globex", "globex"),
        ("env:production, customer:initech", "initech"),
        (["env:production", "account:umbrella"], "umbrella"),
        ("env:production,service:billing", ""),
        ("", ""),
    ],
)
def test_the_tenant_comes_from_a_datadog_tag(tags, tenant):
    assert parse(samples.datadog_custom(tags=tags)).tenant == tenant


def test_the_tenant_comes_from_the_datadog_alert_scope_too():
    body = samples.datadog_custom(tags="env:production")
    body["alert_scope"] = "availability-zone:eu-west-1a, tenant:globex"
    assert parse(body).tenant == "globex"


def test_a_datadog_link_that_is_not_http_is_dropped():
    assert parse(samples.datadog_custom(link="javascript:alert(1)")).url == ""


def test_a_datadog_payload_without_a_title_is_refused():
    body = samples.datadog_default()
    del body["title"]
    with pytest.raises(UnknownShape, match="EVENT_TITLE"):
        parse(body)


# --- Unknown shapes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": "Export failed"},
        {"text": "Export failed", "severity": "high"},
        {"alerts": [{"labels": {"alertname": "ExportErrors"}}], "status": "firing"},
        {"data": {"event": "not an object"}, "action": "triggered"},
        {"project_slug": "billing", "event": "not an object", "message": "Export"},
    ],
)
def test_an_object_of_no_shape_we_read_is_an_unknown_shape(body):
    with pytest.raises(UnknownShape):
        parse(body)


@pytest.mark.parametrize("body", [[samples.generic()], "Export failed", 42, None, True])
def test_json_that_is_not_an_object_is_an_unknown_shape(body):
    with pytest.raises(UnknownShape, match="JSON object"):
        parse(body)
