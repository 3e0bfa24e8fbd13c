"""Demo data for trying Ensemble: safe to run again, it only fills what is missing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from sessions_app.models import (
    EnsembleSession,
    Feature,
    Goal,
    GoalVote,
    Membership,
    Metric,
    Participant,
    Team,
)
from sessions_app.services.features import create_feature
from sessions_app.services.metrics import store_measurements

PASSWORD = "ensemble-demo"
# Fixed ids: the demo teams are found again by id, never by a name that a real
# team might also have.
ACME_ID = uuid.UUID("00000000-0000-4000-8000-00000000ac3e")
GLOBEX_ID = uuid.UUID("00000000-0000-4000-8000-0000000061b0")
ACME = [
    # username, team role, who they are
    ("dana", Membership.Role.OWNER, "facilitator"),
    ("sam", Membership.Role.MEMBER, "support"),
    ("erin", Membership.Role.MEMBER, "engineering"),
    ("pat", Membership.Role.MEMBER, "product"),
    ("kim", Membership.Role.MEMBER, "design"),
]
GOALS = [
    # author, perspective, text, must cover, voters
    (
        "sam",
        "support",
        "Export 500 invoices at once and check the file opens in Excel",
        True,
        ["sam", "pat", "erin"],
    ),
    (
        "erin",
        "engineering",
        "Watch the export job's memory and duration in the logs",
        True,
        ["erin", "dana"],
    ),
    (
        "pat",
        "product",
        "A customer admin finds bulk export without help",
        False,
        ["pat", "kim"],
    ),
    (
        "kim",
        "design",
        "Progress and errors are clear while a long export runs",
        False,
        ["kim"],
    ),
    (
        "dana",
        "success",
        "Exports respect each customer's date and currency format",
        False,
        [],
    ),
]
ROLES = {
    "erin": Participant.Role.DRIVER,
    "pat": Participant.Role.NAVIGATOR,
    "kim": Participant.Role.NOTE_TAKER,
    "sam": Participant.Role.OBSERVER,
}


class Command(BaseCommand):
    help = "Load the demo teams Acme and Globex (every password: ensemble-demo)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (the demo users have a published password).",
        )

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with a published password, so it refuses to run "
                "with DEBUG off. Pass --force if this really is a demo deployment."
            )
        with transaction.atomic():
            self._seed()
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in as:"))
        for username, role, who in ACME:
            self.stdout.write(f"  {username:<5} / {PASSWORD}   Acme, {role} ({who})")
        self.stdout.write(f"  olga  / {PASSWORD}   Globex, owner (another team)")

    def _seed(self) -> None:
        users = {name: self._user(name) for name, _, _ in ACME + [("olga", None, None)]}

        acme, _ = Team.objects.get_or_create(pk=ACME_ID, defaults={"name": "Acme"})
        for name, role, _ in ACME:
            Membership.objects.get_or_create(team=acme, user=users[name], defaults={"role": role})
        globex, _ = Team.objects.get_or_create(pk=GLOBEX_ID, defaults={"name": "Globex"})
        Membership.objects.get_or_create(
            team=globex, user=users["olga"], defaults={"role": Membership.Role.OWNER}
        )

        feature = Feature.objects.filter(team=acme, flag_key="bulk-invoice-export").first()
        if feature is None:
            # The same path as a person adding it: the default rollout plan comes with it.
            feature = create_feature(
                team=acme,
                data={
                    "name": "Bulk invoice export",
                    "flag_key": "bulk-invoice-export",
                    "description": "Select many invoices and export them as one CSV "
                    "or ZIP of PDFs.",
                },
            )
        metric, metric_created = Metric.objects.get_or_create(
            feature=feature,
            name="Bulk exports done within 7 days",
            defaults={
                "key": "bulk-exports-7d",
                "definition": "Share of active accounts that finish a bulk export within "
                "7 days of the feature being enabled for them.",
                "unit": "%",
                "baseline": 40,
                "target": 70,
            },
        )
        if metric_created:
            # Eight weeks of history, so the chart has a line to show.
            today = timezone.localdate()
            store_measurements(
                metric=metric,
                rows=[
                    (today - timedelta(weeks=8 - week), Decimal(value))
                    for week, value in enumerate(
                        ["40", "41.5", "39", "42", "44", "47.5", "49", "50"]
                    )
                ],
            )

        session, created = EnsembleSession.objects.get_or_create(
            feature=feature,
            title="Bulk export walkthrough",
            defaults={
                "charter": "Explore bulk export on the internal tenant as support, success, "
                "product and design would; look for slow exports, confusing states and "
                "wrong formats.",
                "internal_tenant": "acme-internal",
                "environment": "production",
                "scheduled_start": timezone.now().replace(minute=0, second=0, microsecond=0)
                + timedelta(days=1),
                "timebox_minutes": 60,
                "facilitator": users["dana"],
                "status": EnsembleSession.Status.PLANNING,
                "rotation_minutes": 10,
                "created_by": users["dana"],
            },
        )
        if not created:
            # Only a new session gets the demo's links, roles and goals: whatever
            # people changed since (someone else driving, a goal merged) stays theirs.
            return
        session.dashboard_links.create(
            label="Export job logs", url="https://logs.example.com/acme/bulk-export"
        )
        Participant.objects.bulk_create(
            Participant(session=session, user=users[name], role=role, rotation_position=i)
            for i, (name, role) in enumerate(ROLES.items())
        )
        for author, perspective, text, must_cover, voters in GOALS:
            goal = Goal.objects.create(
                session=session,
                text=text,
                author=users[author],
                perspective=perspective,
                must_cover=must_cover,
            )
            GoalVote.objects.bulk_create(GoalVote(goal=goal, user=users[v]) for v in voters)

    def _user(self, username: str):
        user, _ = get_user_model().objects.get_or_create(username=username)
        # Every run makes the published password true again (the contract's logins).
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
        return user
