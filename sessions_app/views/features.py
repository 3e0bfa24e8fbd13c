from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from sessions_app import charts
from sessions_app.forms import FeatureForm
from sessions_app.models import Event, RolloutStage
from sessions_app.permissions import current_membership, feature_for, is_owner
from sessions_app.services import alerts, features, rollout
from sessions_app.services.validation import InvalidInput

# The feature page lists this many of the latest alerts.
RECENT_ALERTS = 50


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
            "stages": feature.rollout_stages.select_related("gate_decision__session"),
            "gate": rollout.gate(feature),
            "is_owner": is_owner(request.user, feature.team),
            "changes": feature.rollout_changes.select_related("actor")[:100],
            "charts": [charts.build(metric) for metric in feature.metrics.all()],
            "alert_webhook_url": request.build_absolute_uri(
                reverse(
                    "alert_webhook",
                    kwargs={"feature_id": feature.pk, "token": feature.alert_token},
                )
            ),
            "alerts_per_minute": settings.ALERTS_PER_MINUTE,
            "example_tenant": feature.sessions.values_list("internal_tenant", flat=True).first()
            or "internal",
            "recent_alerts": feature.alerts.prefetch_related(
                Prefetch("events", queryset=Event.objects.select_related("session"))
            )[:RECENT_ALERTS],
        },
    )


@login_required
@require_POST
def alert_token_regenerate(request: HttpRequest, feature_id: UUID) -> HttpResponse:
    feature = feature_for(request.user, feature_id)
    alerts.regenerate_token(feature=feature, by=request.user)
    messages.success(request, "New alert webhook URL: update the tools that post to it.")
    return redirect(reverse("feature_detail", kwargs={"feature_id": feature.pk}) + "#alerts")


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


# --- The rollout plan ------------------------------------------------------------

STAGE_ACTIONS = {
    "approve": lambda stage, request: rollout.approve(stage=stage, by=request.user),
    "override": lambda stage, request: rollout.override(
        stage=stage, by=request.user, reason=request.POST.get("reason", "")
    ),
    "enable": lambda stage, request: rollout.enable(stage=stage, by=request.user),
    "pause": lambda stage, request: rollout.pause(
        stage=stage, by=request.user, reason=request.POST.get("reason", "")
    ),
    "rename": lambda stage, request: rollout.rename_stage(
        stage=stage, by=request.user, data=request.POST
    ),
    "up": lambda stage, request: rollout.move_stage(stage=stage, by=request.user, up=True),
    "down": lambda stage, request: rollout.move_stage(stage=stage, by=request.user, up=False),
    "remove": lambda stage, request: rollout.remove_stage(stage=stage, by=request.user),
}


def _plan(feature_id: UUID) -> str:
    return reverse("feature_detail", kwargs={"feature_id": feature_id}) + "#rollout"


@login_required
@require_POST
def rollout_stage(request: HttpRequest, feature_id: UUID, stage_id: int, action: str):
    feature = feature_for(request.user, feature_id)
    stage = get_object_or_404(RolloutStage, pk=stage_id, feature=feature)
    stage.feature = feature
    if action not in STAGE_ACTIONS:
        raise Http404
    try:
        STAGE_ACTIONS[action](stage, request)
    except rollout.RolloutRefused as refused:
        messages.error(request, str(refused))
    return redirect(_plan(feature.pk))


@login_required
@require_POST
def rollout_add(request: HttpRequest, feature_id: UUID):
    feature = feature_for(request.user, feature_id)
    try:
        rollout.add_stage(feature=feature, by=request.user, data=request.POST)
    except rollout.RolloutRefused as refused:
        messages.error(request, str(refused))
    return redirect(_plan(feature.pk))
