from django.urls import path

from sessions_app import api
from sessions_app.views import (
    accounts,
    alert_webhook,
    dashboard,
    features,
    goals,
    live,
    metrics,
    planning,
    review,
    roles,
)

session = "sessions/<uuid:session_id>/"
goal = session + "goals/<int:goal_id>/"
participant = session + "participants/<int:participant_id>/"
metric = "features/<uuid:feature_id>/metrics/<int:metric_id>/"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    # The read API (token authentication)
    path(
        "api/v1/features/<str:flag_key>/rollout",
        api.feature_rollout,
        name="api_feature_rollout",
    ),
    path(
        "api/v1/features/<str:flag_key>/metrics/<slug:metric_key>/measurements",
        api.metric_measurements,
        name="api_metric_measurements",
    ),
    # Alerts from monitoring (the secret in the URL authenticates the sender)
    path(
        "hooks/alerts/<uuid:feature_id>/<str:token>",
        alert_webhook.receive,
        name="alert_webhook",
    ),
    # Accounts and teams
    path("accounts/signup/", accounts.signup, name="signup"),
    path("account/", accounts.account, name="account"),
    path("account/tokens/<int:token_id>/revoke/", accounts.token_revoke, name="token_revoke"),
    path("teams/new/", accounts.team_create, name="team_create"),
    path("teams/<uuid:team_id>/switch/", accounts.team_switch, name="team_switch"),
    path("team/", accounts.team, name="team"),
    path("team/invites/", accounts.invite_create, name="invite_create"),
    path(
        "team/invites/<int:invite_id>/revoke/",
        accounts.invite_revoke,
        name="invite_revoke",
    ),
    path("invites/<str:token>/", accounts.invite_accept, name="invite_accept"),
    path("team/webhooks/", accounts.webhook_add, name="webhook_add"),
    path("team/webhooks/<int:webhook_id>/remove/", accounts.webhook_remove, name="webhook_remove"),
    # Features
    path("features/new/", features.feature_create, name="feature_create"),
    path("features/<uuid:feature_id>/", features.feature_detail, name="feature_detail"),
    path("features/<uuid:feature_id>/edit/", features.feature_edit, name="feature_edit"),
    path("features/<uuid:feature_id>/rollout/", features.rollout_add, name="rollout_add"),
    path(
        "features/<uuid:feature_id>/alert-webhook/regenerate/",
        features.alert_token_regenerate,
        name="alert_token_regenerate",
    ),
    # Metrics: the aspirational goal and its measurements
    path("features/<uuid:feature_id>/metrics/", metrics.metric_add, name="metric_add"),
    path(metric, metrics.metric_edit, name="metric_edit"),
    path(metric + "delete/", metrics.metric_delete, name="metric_delete"),
    path(metric + "measurements/", metrics.measurement_add, name="measurement_add"),
    path(metric + "measurements/upload/", metrics.measurements_upload, name="measurements_upload"),
    path(metric + "measurements.csv", metrics.measurements_csv, name="measurements_csv"),
    path(
        "features/<uuid:feature_id>/rollout/<int:stage_id>/<slug:action>/",
        features.rollout_stage,
        name="rollout_stage",
    ),
    # Planning a session
    path("sessions/new/", planning.session_create, name="session_create"),
    path(session, planning.session_plan, name="session_plan"),
    path(session + "edit/", planning.session_edit, name="session_edit"),
    # The goals board
    path(session + "goals/", goals.goal_add, name="goal_add"),
    path(session + "goals/merge/", goals.goals_merge, name="goals_merge"),
    path(goal + "edit/", goals.goal_edit, name="goal_edit"),
    path(goal + "delete/", goals.goal_delete, name="goal_delete"),
    path(goal + "vote/", goals.goal_vote, name="goal_vote"),
    path(goal + "must-cover/", goals.goal_must_cover, name="goal_must_cover"),
    # Roles
    path(session + "participants/", roles.participant_add, name="participant_add"),
    path(participant + "role/", roles.participant_role, name="participant_role"),
    path(participant + "remove/", roles.participant_remove, name="participant_remove"),
    path(participant + "move/", roles.participant_move, name="participant_move"),
    path(session + "rotation/", roles.rotation, name="rotation"),
    # The live room
    path(session + "live/", live.live_room, name="live_room"),
    path(session + "live/earlier/", live.earlier, name="live_earlier"),
    path(session + "notes/", live.note_add, name="note_add"),
    path(session + "start/", live.start, name="live_start"),
    path(session + "end/", live.end, name="live_end"),
    path(session + "rotate/", live.rotate, name="live_rotate"),
    path(session + "rotation/pause/", live.pause, name="live_pause"),
    path(session + "rotation/resume/", live.resume, name="live_resume"),
    path(goal + "status/", live.goal_status, name="live_goal_status"),
    path(participant + "live-role/", live.role, name="live_role"),
    path(session + "alerts/<int:event_id>/note/", live.alert_note, name="live_alert_note"),
    path(session + "alerts/other-tenants/", live.alert_tenants, name="live_alert_tenants"),
    # After the session
    path(session + "review/", review.review_page, name="review"),
    path(session + "review/vote/", review.vote, name="review_vote"),
    path(session + "review/reveal/", review.reveal, name="review_reveal"),
    path(session + "review/decision/", review.decide, name="review_decide"),
    path(session + "review/follow-ups/", review.follow_up_add, name="follow_up_add"),
    path(
        session + "review/follow-ups/<int:follow_up_id>/done/",
        review.follow_up_done,
        name="follow_up_done",
    ),
    path(session + "export.json", review.export_json, name="export_json"),
    path(session + "export.md", review.export_md, name="export_md"),
    path(session + "export.csv", review.export_csv, name="export_csv"),
]
