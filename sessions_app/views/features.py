from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from sessions_app.forms import FeatureForm
from sessions_app.permissions import current_membership, feature_for
from sessions_app.services import features
from sessions_app.services.validation import InvalidInput


@login_required
@require_http_methods(["GET", "POST"])
def feature_create(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return redirect("team_create")
    form = FeatureForm(team=membership.team)
    if request.method == "POST":
        try:
            feature = features.create_feature(team=membership.team, data=request.POST)
        except InvalidInput as invalid:
            form = invalid.form
        else:
            messages.success(request, f"Feature “{feature.name}” added.")
            return redirect("feature_detail", feature_id=feature.pk)
    return render(
        request,
        "sessions_app/feature_form.html",
        {"form": form, "feature": None},
        status=400 if form.is_bound else 200,
    )


@login_required
def feature_detail(request: HttpRequest, feature_id: UUID) -> HttpResponse:
    feature = feature_for(request.user, feature_id)
    return render(
        request,
        "sessions_app/feature_detail.html",
        {
            "feature": feature,
            "sessions": feature.sessions.select_related("facilitator"),
            "stages": feature.rollout_stages.all(),
            "metrics": feature.metrics.all(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def feature_edit(request: HttpRequest, feature_id: UUID) -> HttpResponse:
    feature = feature_for(request.user, feature_id)
    form = FeatureForm(instance=feature, team=feature.team)
    if request.method == "POST":
        try:
            features.update_feature(feature=feature, data=request.POST)
        except InvalidInput as invalid:
            form = invalid.form
        else:
            messages.success(request, "Feature saved.")
            return redirect("feature_detail", feature_id=feature.pk)
    return render(
        request,
        "sessions_app/feature_form.html",
        {"form": form, "feature": feature},
        status=400 if form.is_bound else 200,
    )
