"""A feature's metrics and their measurements: typed by hand, uploaded as CSV,
or posted by a scheduled job through the API. All three store through
`store_measurements`, and a batch with one bad row stores nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from sessions_app.forms import MeasurementForm, MetricForm
from sessions_app.models import Feature, Measurement, Metric
from sessions_app.permissions import require_owner
from sessions_app.services.validation import validated

# What a DecimalField(max_digits=12, decimal_places=3) holds.
LARGEST = Decimal("999999999.999")
MAX_ROWS = 50_000
MAX_CSV_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class RowError:
    row: int  # as a person counts them: the CSV's line, or the API list's item from 1
    reason: str

    def __str__(self) -> str:
        return f"Row {self.row}: {self.reason}"


class InvalidRows(Exception):
    """Some rows did not parse: every one is reported, and none stored."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} rows did not parse")
        self.errors = errors


@dataclass(frozen=True)
class Stored:
    created: int
    updated: int


def create_metric(*, feature: Feature, data: Mapping[str, Any]) -> Metric:
    form = validated(MetricForm(data, feature=feature))
    metric = form.save(commit=False)
    metric.feature = feature
    metric.save()
    return metric


def update_metric(*, metric: Metric, data: Mapping[str, Any]) -> Metric:
    return validated(MetricForm(data, instance=metric, feature=metric.feature)).save()


def delete_metric(*, metric: Metric, by) -> None:
    """Its measurements go with it, so only an owner may."""
    require_owner(by, metric.feature.team)
    metric.delete()


def record_measurement(*, metric: Metric, data: Mapping[str, Any]) -> Stored:
    """One value typed by hand; a second one for the same day replaces the first."""
    form = validated(MeasurementForm(data))
    return store_measurements(
        metric=metric, rows=[(form.cleaned_data["date"], form.cleaned_data["value"])]
    )


@transaction.atomic
def store_measurements(*, metric: Metric, rows: list[tuple[date, Decimal]]) -> Stored:
    """Store parsed rows: one value per day, a newer one replacing the older."""
    days = [day for day, _ in rows]
    existing = 0
    for start in range(0, len(days), 1000):  # SQLite caps the parameters of one query
        existing += Measurement.objects.filter(
            metric=metric, date__in=days[start : start + 1000]
        ).count()
    Measurement.objects.bulk_create(
        [Measurement(metric=metric, date=day, value=value) for day, value in rows],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["metric", "date"],
        update_fields=["value"],
    )
    return Stored(created=len(rows) - existing, updated=existing)


# --- Parsing rows ------------------------------------------------------------------


def parse_date(raw: Any) -> date:
    if not isinstance(raw, str):
        raise ValueError("the date must be written as YYYY-MM-DD")
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"“{raw.strip()[:40]}” is not a date as YYYY-MM-DD") from None
    if len(raw.strip()) != 10:
        raise ValueError(f"“{raw.strip()[:40]}” is not a date as YYYY-MM-DD")
    if day > timezone.localdate() + timedelta(days=1):
        raise ValueError(f"{day.isoformat()} is in the future")
    return day


def parse_value(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError("the value must be a number")
    text = str(raw).strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"“{text[:40]}” is not a number") from None
    if not value.is_finite():
        raise ValueError(f"“{text[:40]}” is not a number")
    if abs(value) > LARGEST:
        raise ValueError(f"{text[:40]} is too large (at most {LARGEST})")
    return value.quantize(Decimal("0.001"))


def parse_rows(
    items: Iterable[tuple[int, Any, Any]], errors: list[RowError] | None = None
) -> list[tuple[date, Decimal]]:
    """(row number, date, value) triples → rows, or InvalidRows listing every
    bad row with its reason (a date given twice counts as bad), `errors` found
    earlier included."""
    rows: list[tuple[date, Decimal]] = []
    errors = list(errors or [])
    seen: dict[date, int] = {}
    for number, raw_date, raw_value in items:
        reasons = []
        try:
            day = parse_date(raw_date)
        except ValueError as error:
            reasons.append(str(error))
            day = None
        try:
            value = parse_value(raw_value)
        except ValueError as error:
            reasons.append(str(error))
        if day is not None and day in seen:
            reasons.append(f"{day.isoformat()} is also on row {seen[day]}")
        if reasons:
            errors.append(RowError(number, "; ".join(reasons)))
            continue
        seen[day] = number
        rows.append((day, value))
    if errors:
        raise InvalidRows(sorted(errors, key=lambda error: error.row))
    if not rows:
        raise InvalidRows([RowError(1, "there are no measurements")])
    if len(rows) > MAX_ROWS:
        raise InvalidRows([RowError(MAX_ROWS + 1, f"at most {MAX_ROWS:,} rows at once")])
    return rows


def import_csv(*, metric: Metric, upload) -> Stored:
    """A CSV file with the header `date,value`. All rows, or none."""
    if upload is None:
        raise InvalidRows([RowError(1, "choose a CSV file to upload")])
    if upload.size > MAX_CSV_BYTES:
        raise InvalidRows([RowError(1, f"the file is over {MAX_CSV_BYTES // 1024 // 1024} MB")])
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRows([RowError(1, "the file is not UTF-8 text")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        lines = list(reader)
    except csv.Error as error:
        raise InvalidRows([RowError(reader.line_num, f"not CSV ({error})")]) from None
    header = [cell.strip().lower() for cell in lines[0]] if lines else []
    if header != ["date", "value"]:
        found = ",".join(lines[0])[:80] if lines else "an empty file"
        raise InvalidRows(
            [RowError(1, f"the first row must be the header date,value (found: {found})")]
        )
    items, errors = [], []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, such as the one at the end of a file
        if len(cells) != 2:
            errors.append(RowError(number, f"expected 2 columns (date,value), found {len(cells)}"))
            continue
        items.append((number, cells[0], cells[1]))
    return store_measurements(metric=metric, rows=parse_rows(items, errors))


def import_json(*, metric: Metric, body: Any) -> Stored:
    """The API's body: {"date": …, "value": …}, or {"measurements": [{…}, …]}."""
    if isinstance(body, dict) and "measurements" in body:
        items = body["measurements"]
        if not isinstance(items, list):
            raise InvalidRows([RowError(1, '"measurements" must be a list')])
    elif isinstance(body, dict):
        items = [body]
    else:
        raise InvalidRows([RowError(1, 'send {"date": "YYYY-MM-DD", "value": number}')])
    triples = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            triples.append((number, None, None))
        else:
            triples.append((number, item.get("date"), item.get("value")))
    return store_measurements(metric=metric, rows=parse_rows(triples))
