"""Feeding a metric through the API, as a scheduled query does:
POST /api/v1/features/<flag_key>/metrics/<metric>/measurements with a token
made to write. All items stored or none; every refusal stores nothing."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import ApiToken, Measurement, Metric
from sessions_app.services import metrics
from sessions_app.services.tokens import create_token
from tests.factories import FeatureFactory, MembershipFactory, TeamFactory


@pytest.fixture
def metric(feature) -> Metric:
    return Metric.objects.create(
        feature=feature,
        name="Accounts exporting",
        key="exports-7d",
        unit="%",
        baseline=40,
        target=70,
    )


@pytest.fixture
def writer(teammate) -> str:
    _, raw = create_token(user=teammate, name="Nightly SQL job", can_write=True)
    return raw


def api_post(raw: str | None, body, *, flag_key="bulk-invoice-export", metric_key="exports-7d"):
    url = reverse(
        "api_metric_measurements", kwargs={"flag_key": flag_key, "metric_key": metric_key}
    )
    headers = {"Authorization": f"Bearer {raw}"} if raw else {}
    data = body if isinstance(body, bytes) else json.dumps(body)
    # A job has no session and no CSRF token.
    client = Client(enforce_csrf_checks=True)
    return client.post(url, data, content_type="application/json", headers=headers)


def stored(metric: Metric) -> list[tuple[str, str]]:
    return [
        (day.isoformat(), f"{value.normalize():f}")
        for day, value in metric.measurements.order_by("date").values_list("date", "value")
    ]


# --- Stored ------------------------------------------------------------------------------------


def test_one_measurement_is_stored_with_201(metric, writer):
    response = api_post(writer, {"date": "2025-11-17", "value": 52.5})

    assert response.status_code == 201
    assert response.json() == {"metric": "exports-7d", "created": 1, "updated": 0}
    assert stored(metric) == [("2025-11-17", "52.5")]


def test_a_batch_is_stored_with_201(metric, writer):
    body = {
        "measurements": [
            {"date": "2025-11-03", "value": 41},
            {"date": "2025-11-10", "value": "44.25"},
            {"date": "2025-11-17", "value": 50.125},
        ]
    }
    response = api_post(writer, body)
    assert response.status_code == 201
    assert response.json() == {"metric": "exports-7d", "created": 3, "updated": 0}
    assert stored(metric) == [
        ("2025-11-03", "41"),
        ("2025-11-10", "44.25"),
        ("2025-11-17", "50.125"),
    ]


def test_days_already_measured_get_the_new_value_and_are_counted_as_updated(metric, writer):
    api_post(writer, {"measurements": [{"date": "2025-11-03", "value": 41}]})
    api_post(writer, {"date": "2025-11-10", "value": 44})

    response = api_post(
        writer,
        {
            "measurements": [
                {"date": "2025-11-03", "value": 42},
                {"date": "2025-11-10", "value": 45},
                {"date": "2025-11-17", "value": 50},
            ]
        },
    )

    assert response.status_code == 201
    assert response.json() == {"metric": "exports-7d", "created": 1, "updated": 2}
    assert stored(metric) == [("2025-11-03", "42"), ("2025-11-10", "45"), ("2025-11-17", "50")]


def test_the_same_batch_sent_twice_changes_nothing_the_second_time(metric, writer):
    body = {
        "measurements": [{"date": "2025-11-03", "value": 41}, {"date": "2025-11-10", "value": 44}]
    }
    api_post(writer, body)
    response = api_post(writer, body)
    assert response.json() == {"metric": "exports-7d", "created": 0, "updated": 2}
    assert Measurement.objects.count() == 2


def test_a_batch_of_a_year_of_days_is_stored(metric, writer):
    start = date(2024, 11, 1).toordinal()
    body = {
        "measurements": [
            {"date": date.fromordinal(start + n).isoformat(), "value": 40 + n / 20}
            for n in range(366)
        ]
    }
    response = api_post(writer, body)
    assert response.status_code == 201
    assert response.json()["created"] == 366
    assert metric.measurements.count() == 366


def test_the_token_is_marked_as_used(metric, teammate):
    token, raw = create_token(user=teammate, name="Nightly SQL job", can_write=True)
    api_post(raw, {"date": "2025-11-17", "value": 52.5})
    token.refresh_from_db()
    assert token.last_used_at is not None


# --- 400: nothing stored -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (
            {
                "measurements": [
                    {"date": "2025-11-03", "value": 41},
                    {"date": "17/11/2025", "value": 44},
                    {"date": "2025-11-18", "value": "about fifty"},
                    {"date": "2025-11-19", "value": True},
                    {"value": 50},
                    {"date": "2025-11-20"},
                    "2025-11-21,52",
                    {"date": "2025-11-03", "value": 43},
                ]
            },
            [
                (2, "“17/11/2025” is not a date as YYYY-MM-DD"),
                (3, "“about fifty” is not a number"),
                (4, "the value must be a number"),
                (5, "the date must be written as YYYY-MM-DD"),
                (6, "the value must be a number"),
                (7, "the date must be written as YYYY-MM-DD; the value must be a number"),
                (8, "2025-11-03 is also on row 1"),
            ],
        ),
        ({"date": "2025-11-17", "value": "NaN"}, [(1, "“NaN” is not a number")]),
        (
            {"date": "2025-11-17", "value": 1e10},
            [(1, "10000000000.0 is too large (at most 999999999.999)")],
        ),
        ({"date": "2099-01-01", "value": 50}, [(1, "2099-01-01 is in the future")]),
        ({"date": 20251117, "value": 50}, [(1, "the date must be written as YYYY-MM-DD")]),
        ({"measurements": []}, [(1, "there are no measurements")]),
        (
            {"measurements": {"date": "2025-11-17", "value": 50}},
            [(1, '"measurements" must be a list')],
        ),
        (
            [{"date": "2025-11-17", "value": 50}],
            [(1, 'send {"date": "YYYY-MM-DD", "value": number}')],
        ),
        ("2025-11-17,50", [(1, 'send {"date": "YYYY-MM-DD", "value": number}')]),
    ],
    ids=[
        "bad-items",
        "nan",
        "too-large",
        "future",
        "date-as-number",
        "empty-list",
        "measurements-not-a-list",
        "a-list",
        "a-string",
    ],
)
def test_a_bad_body_gets_400_with_each_bad_row_and_stores_nothing(metric, writer, body, rows):
    metrics.store_measurements(metric=metric, rows=[(date(2025, 11, 3), Decimal("39"))])

    response = api_post(writer, body)

    assert response.status_code == 400
    assert response.json() == {
        "error": "Nothing was stored: some measurements are not valid.",
        "rows": [{"row": row, "reason": reason} for row, reason in rows],
    }
    assert stored(metric) == [("2025-11-03", "39")]


@pytest.mark.parametrize(
    "raw", [b'{"date": "2025-11-17", "value": 5', b"", b"date=2025-11-17", b"\xff\xfe"]
)
def test_a_body_that_is_not_json_gets_400(metric, writer, raw):
    response = api_post(writer, raw)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert Measurement.objects.count() == 0


# --- Who may write -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Token ens_abc"},
        {"Authorization": "Bearer ens_not-a-token"},
    ],
    ids=["none", "empty", "other-scheme", "unknown"],
)
def test_without_a_known_token_it_is_401(metric, headers):
    url = reverse(
        "api_metric_measurements",
        kwargs={"flag_key": "bulk-invoice-export", "metric_key": "exports-7d"},
    )
    response = Client().post(
        url,
        json.dumps({"date": "2025-11-17", "value": 50}),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert Measurement.objects.count() == 0


def test_a_revoked_token_gets_401(metric, teammate, writer):
    ApiToken.objects.filter(user=teammate).update(revoked_at=timezone.now())
    assert api_post(writer, {"date": "2025-11-17", "value": 50}).status_code == 401
    assert Measurement.objects.count() == 0


def test_a_deactivated_users_token_gets_401(metric, teammate, writer):
    teammate.is_active = False
    teammate.save()
    assert api_post(writer, {"date": "2025-11-17", "value": 50}).status_code == 401
    assert Measurement.objects.count() == 0


def test_a_read_only_token_gets_403(metric, teammate):
    _, raw = create_token(user=teammate, name="Flag sync")

    response = api_post(raw, {"date": "2025-11-17", "value": 50})

    assert response.status_code == 403
    assert "only reads" in response.json()["error"]
    assert Measurement.objects.count() == 0


def test_another_teams_writing_token_gets_404(metric, outsider):
    _, raw = create_token(user=outsider, name="Globex job", can_write=True)

    response = api_post(raw, {"date": "2025-11-17", "value": 50})

    assert response.status_code == 404
    assert Measurement.objects.count() == 0


def test_another_team_with_the_same_flag_key_is_not_written_to(metric, outsider):
    globex = outsider.memberships.get().team
    theirs = FeatureFactory(team=globex, flag_key="bulk-invoice-export")
    their_metric = Metric.objects.create(
        feature=theirs, name="Theirs", key="exports-7d", baseline=1, target=2
    )
    _, raw = create_token(user=outsider, name="Globex job", can_write=True)

    response = api_post(raw, {"date": "2025-11-17", "value": 50})

    assert response.status_code == 201
    assert stored(their_metric) == [("2025-11-17", "50")]
    assert stored(metric) == []


@pytest.mark.parametrize(
    ("flag_key", "metric_key"),
    [("bulk-invoice-export", "no-such-metric"), ("no-such-feature", "exports-7d")],
)
def test_an_unknown_feature_or_metric_gets_404(metric, writer, flag_key, metric_key):
    response = api_post(
        writer, {"date": "2025-11-17", "value": 50}, flag_key=flag_key, metric_key=metric_key
    )
    assert response.status_code == 404
    assert Measurement.objects.count() == 0


def test_a_metric_of_another_feature_of_the_team_is_404(metric, team, writer):
    FeatureFactory(team=team, flag_key="csv-import")
    response = api_post(writer, {"date": "2025-11-17", "value": 50}, flag_key="csv-import")
    assert response.status_code == 404
    assert Measurement.objects.count() == 0


def test_a_member_of_two_teams_using_the_flag_key_picks_one_with_team(metric, teammate, writer):
    other_team = TeamFactory(name="Acme EU")
    MembershipFactory(team=other_team, user=teammate)
    FeatureFactory(team=other_team, flag_key="bulk-invoice-export")
    url = reverse(
        "api_metric_measurements",
        kwargs={"flag_key": "bulk-invoice-export", "metric_key": "exports-7d"},
    )
    body = json.dumps({"date": "2025-11-17", "value": 50})
    headers = {"Authorization": f"Bearer {writer}"}

    ambiguous = Client().post(url, body, content_type="application/json", headers=headers)
    chosen = Client().post(
        f"{url}?team={metric.feature.team_id}",
        body,
        content_type="application/json",
        headers=headers,
    )

    assert ambiguous.status_code == 400
    assert "?team=" in ambiguous.json()["error"]
    assert chosen.status_code == 201
    assert stored(metric) == [("2025-11-17", "50")]


def test_only_post_is_taken(metric, writer):
    url = reverse(
        "api_metric_measurements",
        kwargs={"flag_key": "bulk-invoice-export", "metric_key": "exports-7d"},
    )
    response = Client().get(url, headers={"Authorization": f"Bearer {writer}"})
    assert response.status_code == 405
