"""A feature's metrics: define them, feed them by hand or CSV, download them.
(The API feeds them too: api.py.)"""

from __future__ import annotations

import csv
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessions_app.forms import MetricForm
from sessions_app.models import Metric
from sessions_app.permissions import feature_for
from sessions_app.services import metrics
from sessions_app.services.validation import InvalidInput


def _metric(request: HttpRequest, feature_id: UUID, metric_id: int) -> Metric:
    feature = feature_for(request.user, feature_id)
    metric = get_object_or_404(Metric, pk=metric_id, feature=feature)
    metric.feature = feature
    return metric


def _chart(metric: Metric) -> str:
    return reverse("feature_detail", kwargs={"feature_id": metric.feature_id}) + (
        f"#metric-{metric.pk}"
    )


def _stored(request: HttpRequest, stored: metrics.Stored) -> None:
    parts = [f"{stored.created} added"] + ([f"{stored.updated} replaced"] if stored.updated else [])
    messages.success(request, f"Measurements stored: {', '.join(parts)}.")


@login_required
@require_http_methods(["GET", "POST"])
def metric_add(request: HttpRequest, feature_id: UUID) -> HttpResponse:
    feature = feature_for(request.user, feature_id)
    form = MetricForm(feature=feature)
    if request.method == "POST":
        try:
            metric = metrics.create_metric(feature=feature, data=request.POST)
        except InvalidInput as invalid:
            form = invalid.form
        else:
            messages.success(request, f"Metric “{metric.name}” added.")
            return redirect(_chart(metric))
    return render(
        request,
        "sessions_app/metric_form.html",
        {"form": form, "feature": feature, "metric": None},
        status=400 if form.is_bound else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def metric_edit(request: HttpRequest, feature_id: UUID, metric_id: int) -> HttpResponse:
    metric = _metric(request, feature_id, metric_id)
    form = MetricForm(instance=metric, feature=metric.feature)
    if request.method == "POST":
        try:
            metrics.update_metric(metric=metric, data=request.POST)
        except InvalidInput as invalid:
            form = invalid.form
        else:
            messages.success(request, "Metric saved.")
            return redirect(_chart(metric))
    return render(
        request,
        "sessions_app/metric_form.html",
        {"form": form, "feature": metric.feature, "metric": metric},
        status=400 if form.is_bound else 200,
    )


@login_required
@require_POST
def metric_delete(request: HttpRequest, feature_id: UUID, metric_id: int) -> HttpResponse:
    metric = _metric(request, feature_id, metric_id)
    metrics.delete_metric(metric=metric, by=request.user)
    messages.success(request, f"Metric “{metric.name}” and its measurements deleted.")
    return redirect(reverse("feature_detail", kwargs={"feature_id": metric.feature_id}))


@login_required
@require_POST
def measurement_add(request: HttpRequest, feature_id: UUID, metric_id: int) -> HttpResponse:
    metric = _metric(request, feature_id, metric_id)
    try:
        stored = metrics.record_measurement(metric=metric, data=request.POST)
    except InvalidInput as invalid:
        reasons = " ".join(e for errors in invalid.form.errors.values() for e in errors)
        messages.error(request, f"Nothing stored for “{metric.name}”: {reasons}")
    else:
        _stored(request, stored)
    return redirect(_chart(metric))


@login_required
@require_POST
def measurements_upload(request: HttpRequest, feature_id: UUID, metric_id: int) -> HttpResponse:
    metric = _metric(request, feature_id, metric_id)
    try:
        stored = metrics.import_csv(metric=metric, upload=request.FILES.get("file"))
    except metrics.InvalidRows as invalid:
        return render(
            request,
            "sessions_app/metric_upload_report.html",
            {"metric": metric, "errors": invalid.errors},
            status=400,
        )
    _stored(request, stored)
    return redirect(_chart(metric))


@login_required
@require_GET
def measurements_csv(request: HttpRequest, feature_id: UUID, metric_id: int) -> HttpResponse:
    """Every measurement, in the same date,value format the upload takes."""
    metric = _metric(request, feature_id, metric_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{metric.key}.csv"'
    writer = csv.writer(response)
    writer.writerow(["date", "value"])
    for day, value in metric.measurements.order_by("date").values_list("date", "value"):
        writer.writerow([day.isoformat(), f"{value.normalize():f}"])
    return response
