from django.contrib import admin

from sessions_app.models import (
    DashboardLink,
    EnsembleSession,
    Feature,
    Goal,
    Invite,
    Measurement,
    Membership,
    Metric,
    Participant,
    RolloutStage,
    Team,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["team", "created_by", "created_at", "revoked_at"]
    list_filter = ["team"]


class RolloutStageInline(admin.TabularInline):
    model = RolloutStage
    extra = 0


class MetricInline(admin.TabularInline):
    model = Metric
    extra = 0


@admin.register(Feature)
class FeatureAdmin(admin.ModelAdmin):
    list_display = ["name", "flag_key", "team"]
    list_filter = ["team"]
    search_fields = ["name", "flag_key"]
    inlines = [RolloutStageInline, MetricInline]


class DashboardLinkInline(admin.TabularInline):
    model = DashboardLink
    extra = 0


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    raw_id_fields = ["user"]


@admin.register(EnsembleSession)
class EnsembleSessionAdmin(admin.ModelAdmin):
    list_display = ["title", "feature", "status", "scheduled_start", "facilitator"]
    list_filter = ["status", "feature__team"]
    search_fields = ["title"]
    raw_id_fields = ["facilitator", "created_by"]
    inlines = [DashboardLinkInline, ParticipantInline]


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    list_display = ["text", "session", "perspective", "must_cover", "status"]
    list_filter = ["perspective", "status", "must_cover"]
    raw_id_fields = ["session", "author"]


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    list_display = ["metric", "date", "value"]
    list_filter = ["metric"]
