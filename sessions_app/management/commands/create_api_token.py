"""`python manage.py create_api_token <username>`: print a new personal API token."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from sessions_app.services.tokens import create_token


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="Created from the command line")
        parser.add_argument(
            "--write", action="store_true", help="Let it write measurements, not only read."
        )

    def handle(self, *args, username: str, name: str, write: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user “{username}”.")
        _, raw = create_token(user=user, name=name, can_write=write)
        self.stdout.write(raw)
