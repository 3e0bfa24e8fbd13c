"""A feature's metrics: defined on the feature page, fed by hand and by CSV
(all rows or none, with each bad row's number and reason), downloaded as the
same CSV, and deleted only by an owner."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import Measurement, Metric
from sessions_app.services import metrics
from sessions_app.services.metrics import InvalidRows, RowError
from tests.factories import FeatureFactory

GOOD_CSV = b"date,value\n2025-11-03,41.5\n2025-11-10,44\n2025-11-17,50.25\n"


@pytest.fixture
def metric(feature) -> Metric:
    return Metric.objects.create(
        feature=feature,
        name="Accounts exporting within 7 days",
        key="exports-7d",
        definition="Share of active accounts that run an export in their first week.",
        unit="%",
        baseline=40,
        target=70,
    )


def url(name: str, metric: Metric) -> str:
    return reverse(name, kwargs={"feature_id": metric.feature_id, "metric_id": metric.pk})


def stored(metric: Metric) -> list[tuple[str, str]]:
    return [
        (day.isoformat(), f"{value.normalize():f}")
        for day, value in metric.measurements.order_by("date").values_list("date", "value")
    ]


def upload(client, metric: Metric, content: bytes, name: str = "exports.csv"):
    return client.post(
        url("measurements_upload", metric),
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def csv_file(content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("exports.csv", content, content_type="text/csv")


def import_errors(metric: Metric, content: bytes) -> list[str]:
    with pytest.raises(InvalidRows) as refused:
        metrics.import_csv(metric=metric, upload=csv_file(content))
    return [str(error) for error in refused.value.errors]


# --- Defining a metric --------------------------------------------------------------------


def metric_data(**overrides) -> dict:
    return {
        "name": "p95 export time",
        "key": "",
        "definition": "95th percentile of the time to export 500 invoices.",
        "unit": "ms",
        "baseline": "900",
        "target": "600",
        **overrides,
    }


def test_a_member_adds_a_metric_its_key_made_from_the_name_and_direction_from_the_numbers(
    feature, teammate_client
):
    response = teammate_client.post(
        reverse("metric_add", kwargs={"feature_id": feature.pk}), metric_data()
    )

    metric = Metric.objects.get()
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("feature_detail", kwargs={"feature_id": feature.pk}) + f"#metric-{metric.pk}"
    )
    assert (metric.feature, metric.name, metric.key, metric.unit) == (
        feature,
        "p95 export time",
        "p95-export-time",
        "ms",
    )
    assert (metric.baseline, metric.target, metric.direction) == (900, 600, "down")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"baseline": "abc"}, "baseline", "Enter a number."),
        ({"target": "900"}, "target", "The target must differ from the baseline."),
        ({"name": "Accounts exporting within 7 days"}, "name", "already has a metric"),
        ({"key": "exports-7d"}, "key", "already has a metric with this key"),
        ({"key": "not a slug!"}, "key", "Enter a valid"),
    ],
)
def test_a_metric_that_does_not_validate_is_refused_and_not_stored(
    metric, teammate_client, overrides, field, message
):
    response = teammate_client.post(
        reverse("metric_add", kwargs={"feature_id": metric.feature_id}), metric_data(**overrides)
    )
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert Metric.objects.count() == 1


def test_the_same_name_on_another_feature_is_fine(metric, team):
    other = FeatureFactory(team=team)
    created = metrics.create_metric(feature=other, data=metric_data(name=metric.name))
    assert created.key == "accounts-exporting-within-7-days"


def test_editing_a_metric_keeps_its_measurements_and_recomputes_its_direction(
    metric, teammate_client
):
    metrics.store_measurements(metric=metric, rows=[(date(2025, 11, 3), Decimal("41.5"))])
    response = teammate_client.post(
        url("metric_edit", metric),
        metric_data(name="Accounts exporting", key="exports-7d", unit="%", baseline=70, target=40),
    )
    assert response.status_code == 302
    metric.refresh_from_db()
    assert (metric.name, metric.direction) == ("Accounts exporting", "down")
    assert stored(metric) == [("2025-11-03", "41.5")]


def test_an_outsider_cannot_see_or_add_metrics(metric, outsider_client):
    assert outsider_client.get(url("metric_edit", metric)).status_code == 404
    response = outsider_client.post(
        reverse("metric_add", kwargs={"feature_id": metric.feature_id}), metric_data()
    )
    assert response.status_code == 404
    assert Metric.objects.count() == 1


# --- Deleting: owners only -------------------------------------------------------------------


def test_an_owner_deletes_a_metric_with_its_measurements(metric, facilitator_client):
    metrics.store_measurements(metric=metric, rows=[(date(2025, 11, 3), Decimal("41.5"))])
    response = facilitator_client.post(url("metric_delete", metric))
    assert response.status_code == 302
    assert Metric.objects.count() == 0
    assert Measurement.objects.count() == 0


def test_a_teammate_cannot_delete_a_metric(metric, teammate_client):
    metrics.store_measurements(metric=metric, rows=[(date(2025, 11, 3), Decimal("41.5"))])
    assert teammate_client.post(url("metric_delete", metric)).status_code == 403
    assert Metric.objects.count() == 1
    assert Measurement.objects.count() == 1


def test_an_outsider_cannot_delete_a_metric(metric, outsider_client):
    assert outsider_client.post(url("metric_delete", metric)).status_code == 404
    assert Metric.objects.count() == 1


def test_deleting_needs_a_post(metric, facilitator_client):
    assert facilitator_client.get(url("metric_delete", metric)).status_code == 405
    assert Metric.objects.count() == 1


# --- By hand --------------------------------------------------------------------------------


def test_a_measurement_typed_by_hand_is_stored(metric, teammate_client):
    response = teammate_client.post(
        url("measurement_add", metric), {"date": "2025-11-03", "value": "41.5"}, follow=True
    )
    assert stored(metric) == [("2025-11-03", "41.5")]
    assert "Measurements stored: 1 added." in response.content.decode()


def test_a_second_value_for_the_same_day_replaces_the_first(metric, teammate_client):
    teammate_client.post(url("measurement_add", metric), {"date": "2025-11-03", "value": "41.5"})
    response = teammate_client.post(
        url("measurement_add", metric), {"date": "2025-11-03", "value": "43"}, follow=True
    )
    assert stored(metric) == [("2025-11-03", "43")]
    assert "Measurements stored: 0 added, 1 replaced." in response.content.decode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"date": "2025-11-03", "value": "forty"}, "Enter a number."),
        ({"date": "2025-11-03", "value": ""}, "This field is required."),
        ({"date": "3rd of November", "value": "41"}, "Enter a valid date."),
        ({"date": "", "value": "41"}, "This field is required."),
        ({"date": "2025-11-03", "value": "41.1234"}, "no more than 3 decimal places"),
        (
            {"date": "2025-11-03", "value": "12345678901"},
            "no more than 9 digits before the decimal point",
        ),
        (
            {"date": (timezone.localdate() + timedelta(days=3)).isoformat(), "value": "41"},
            "That date is in the future.",
        ),
    ],
)
def test_a_measurement_typed_wrong_is_refused_with_the_reason_and_not_stored(
    metric, teammate_client, data, reason
):
    response = teammate_client.post(url("measurement_add", metric), data, follow=True)
    html = response.content.decode()
    assert "Nothing stored for “Accounts exporting within 7 days”" in html
    assert reason in html
    assert Measurement.objects.count() == 0


# --- CSV upload ---------------------------------------------------------------------------------


def test_a_good_csv_file_is_stored_whole(metric, teammate_client):
    response = upload(teammate_client, metric, GOOD_CSV)
    assert response.status_code == 302
    assert response["Location"].endswith(f"#metric-{metric.pk}")
    assert stored(metric) == [
        ("2025-11-03", "41.5"),
        ("2025-11-10", "44"),
        ("2025-11-17", "50.25"),
    ]


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbfdate,value\r\n2025-11-03,41.5\r\n2025-11-10,44\r\n2025-11-17,50.25\r\n",
        b"Date,Value\n2025-11-03,41.5\n\n2025-11-10, 44 \n2025-11-17,50.25",
        b'"date","value"\n"2025-11-03","41.5"\n"2025-11-10","44.000"\n2025-11-17,50.250\n',
    ],
    ids=["excel-bom-crlf", "blank-lines-spaces-no-final-newline", "quoted"],
)
def test_csv_as_spreadsheets_write_it_is_read(metric, content):
    assert metrics.import_csv(metric=metric, upload=csv_file(content)) == metrics.Stored(3, 0)
    assert stored(metric) == [
        ("2025-11-03", "41.5"),
        ("2025-11-10", "44"),
        ("2025-11-17", "50.25"),
    ]


def test_a_csv_upload_replaces_the_days_it_repeats_and_says_so(metric, teammate_client):
    metrics.store_measurements(
        metric=metric,
        rows=[(date(2025, 11, 3), Decimal("39")), (date(2025, 10, 27), Decimal("38"))],
    )
    response = upload(teammate_client, metric, GOOD_CSV)
    assert response.status_code == 302
    assert stored(metric) == [
        ("2025-10-27", "38"),
        ("2025-11-03", "41.5"),
        ("2025-11-10", "44"),
        ("2025-11-17", "50.25"),
    ]
    html = teammate_client.get(response["Location"]).content.decode()
    assert "Measurements stored: 2 added, 1 replaced." in html


@pytest.mark.parametrize(
    ("content", "errors"),
    [
        (
            b"date,value\n2025-11-03,41.5\n2025-13-01,44\n03/11/2025,45\n2025-11-5,46\n",
            [
                "Row 3: “2025-13-01” is not a date as YYYY-MM-DD",
                "Row 4: “03/11/2025” is not a date as YYYY-MM-DD",
                "Row 5: “2025-11-5” is not a date as YYYY-MM-DD",
            ],
        ),
        (
            b"date,value\n2025-11-03,41.5\n2025-11-10,forty-four\n2025-11-17,50,25\n"
            b"2025-11-24,\n2025-12-01,NaN\n2025-12-08,1e12\n",
            [
                "Row 3: “forty-four” is not a number",
                "Row 4: expected 2 columns (date,value), found 3",
                "Row 5: “” is not a number",
                "Row 6: “NaN” is not a number",
                "Row 7: 1e12 is too large (at most 999999999.999)",
            ],
        ),
        (
            b"date,value\n2025-11-03,41.5\n2025-11-10\n2025-11-17,50.25,final,extra\n",
            [
                "Row 3: expected 2 columns (date,value), found 1",
                "Row 4: expected 2 columns (date,value), found 4",
            ],
        ),
        (
            b"day,amount\n2025-11-03,41.5\n",
            ["Row 1: the first row must be the header date,value (found: day,amount)"],
        ),
        (
            b"2025-11-03,41.5\n2025-11-10,44\n",
            ["Row 1: the first row must be the header date,value (found: 2025-11-03,41.5)"],
        ),
        (
            b"date;value\n2025-11-03;41,5\n",
            ["Row 1: the first row must be the header date,value (found: date;value)"],
        ),
        (
            b"date,value,comment\n2025-11-03,41.5,launch\n",
            ["Row 1: the first row must be the header date,value (found: date,value,comment)"],
        ),
        (
            b"date,value\n2025-11-03,41.5\n2025-11-10,44\n2025-11-03,42\n2025-11-10,44\n",
            [
                "Row 4: 2025-11-03 is also on row 2",
                "Row 5: 2025-11-10 is also on row 3",
            ],
        ),
        (b"", ["Row 1: the first row must be the header date,value (found: an empty file)"]),
        (b"date,value\n", ["Row 1: there are no measurements"]),
        (b"date,value\n\n \n", ["Row 1: there are no measurements"]),
        (
            b"date,value\n2025-11-03,41.5\n2025-11-10,44 \xb0C\n",
            ["Row 1: the file is not UTF-8 text"],
        ),
        (
            "date,value\n2025-11-03,41.5\n2025-11-10,44\n".encode("utf-16"),
            ["Row 1: the file is not UTF-8 text"],
        ),
        (
            b"date,value\n2025-11-03,41.5\n2030-01-01,44\n",
            ["Row 3: 2030-01-01 is in the future"],
        ),
        (
            b"date,value\nnot a date,not a number\n",
            ["Row 2: “not a date” is not a date as YYYY-MM-DD; “not a number” is not a number"],
        ),
    ],
    ids=[
        "bad-dates",
        "non-numbers",
        "wrong-column-count",
        "wrong-header",
        "no-header",
        "semicolons",
        "extra-column",
        "duplicate-dates",
        "empty-file",
        "header-only",
        "blank-rows-only",
        "latin-1",
        "utf-16",
        "future-date",
        "two-reasons-on-one-row",
    ],
)
def test_a_bad_csv_reports_each_bad_row_and_stores_nothing(metric, content, errors):
    metrics.store_measurements(metric=metric, rows=[(date(2025, 11, 3), Decimal("39"))])

    assert import_errors(metric, content) == errors
    assert stored(metric) == [("2025-11-03", "39")]


def test_an_upload_without_a_file_is_refused(metric, teammate_client):
    response = teammate_client.post(url("measurements_upload", metric), {})
    assert response.status_code == 400
    assert "Row 1: choose a CSV file to upload" in response.content.decode()
    assert Measurement.objects.count() == 0


def test_a_file_over_2_mb_is_refused_and_nothing_stored(metric):
    rows = "".join(f"2025-11-{day:02d},41.5\n" for day in range(1, 29))
    content = ("date,value\n" + rows + "#" * (2 * 1024 * 1024)).encode()
    assert import_errors(metric, content) == ["Row 1: the file is over 2 MB"]
    assert Measurement.objects.count() == 0


def test_the_upload_report_page_lists_every_bad_row_with_status_400(metric, teammate_client):
    content = b"date,value\n2025-11-03,41.5\n2025-13-01,44\n2025-11-17,<script>alert(1)</script>\n"

    response = upload(teammate_client, metric, content)

    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was stored" in html
    assert "has 2 rows that did not parse" in html
    assert "<li>Row 3: “2025-13-01” is not a date as YYYY-MM-DD</li>" in html
    assert "<li>Row 4: “&lt;script&gt;alert(1)&lt;/script&gt;” is not a number</li>" in html
    assert "<script>alert(1)" not in html
    assert Measurement.objects.count() == 0


def test_an_outsider_cannot_upload(metric, outsider_client):
    assert upload(outsider_client, metric, GOOD_CSV).status_code == 404
    assert Measurement.objects.count() == 0


# --- CSV download -------------------------------------------------------------------------------


def test_the_csv_download_has_every_measurement_in_date_order(metric, teammate_client):
    metrics.import_csv(metric=metric, upload=csv_file(GOOD_CSV))

    response = teammate_client.get(url("measurements_csv", metric))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="exports-7d.csv"'
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["date", "value"],
        ["2025-11-03", "41.5"],
        ["2025-11-10", "44"],
        ["2025-11-17", "50.25"],
    ]


def test_a_downloaded_csv_uploads_unchanged_into_another_metric(metric, teammate_client):
    rows = [
        (date(2025, 1, 1) + timedelta(days=n), Decimal(n * 7 % 1000) / 8 - 40)
        for n in range(0, 300, 3)
    ]
    metrics.store_measurements(metric=metric, rows=rows)
    twin = Metric.objects.create(
        feature=metric.feature, name="Twin", key="twin", baseline=0, target=1
    )

    downloaded = teammate_client.get(url("measurements_csv", metric)).content
    response = upload(teammate_client, twin, downloaded)

    assert response.status_code == 302
    assert stored(twin) == stored(metric)
    assert len(stored(twin)) == 100


def test_an_outsider_cannot_download(metric, outsider_client):
    assert outsider_client.get(url("measurements_csv", metric)).status_code == 404


# --- The services the API shares -----------------------------------------------------------


def test_store_measurements_counts_created_and_updated(metric):
    first = metrics.store_measurements(
        metric=metric,
        rows=[(date(2025, 11, 3), Decimal("41.5")), (date(2025, 11, 10), Decimal("44"))],
    )
    second = metrics.store_measurements(
        metric=metric,
        rows=[(date(2025, 11, 10), Decimal("45")), (date(2025, 11, 17), Decimal("50"))],
    )
    assert (first, second) == (metrics.Stored(2, 0), metrics.Stored(1, 1))
    assert stored(metric) == [("2025-11-03", "41.5"), ("2025-11-10", "45"), ("2025-11-17", "50")]


def test_a_measurement_of_another_metric_on_the_same_day_is_not_replaced(metric):
    twin = Metric.objects.create(
        feature=metric.feature, name="Twin", key="twin", baseline=0, target=1
    )
    metrics.store_measurements(metric=twin, rows=[(date(2025, 11, 3), Decimal("1"))])
    assert metrics.store_measurements(
        metric=metric, rows=[(date(2025, 11, 3), Decimal("41.5"))]
    ) == metrics.Stored(1, 0)
    assert stored(twin) == [("2025-11-03", "1")]


def test_row_errors_read_as_sentences():
    assert str(RowError(7, "“x” is not a number")) == "Row 7: “x” is not a number"
