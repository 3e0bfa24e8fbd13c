"""Ensemble's data. Every row belongs to one team, through its feature or session."""

from sessions_app.models.alerts import Alert
from sessions_app.models.features import Feature
from sessions_app.models.goals import Goal, GoalVote
from sessions_app.models.metrics import Measurement, Metric
from sessions_app.models.outcome import ConfidenceVote, Decision, FollowUp
from sessions_app.models.rollout import RolloutChange, RolloutStage
from sessions_app.models.sessions import DashboardLink, EnsembleSession, Participant
from sessions_app.models.teams import Invite, Membership, Team
from sessions_app.models.timeline import Event, Note, Presence
from sessions_app.models.tokens import ApiToken
from sessions_app.models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "Alert",
    "ApiToken",
    "ConfidenceVote",
    "Decision",
    "FollowUp",
    "DashboardLink",
    "EnsembleSession",
    "Event",
    "Feature",
    "Goal",
    "GoalVote",
    "Invite",
    "Measurement",
    "Membership",
    "Metric",
    "Note",
    "Participant",
    "Presence",
    "RolloutChange",
    "RolloutStage",
    "Team",
    "Webhook",
    "WebhookDelivery",
]
