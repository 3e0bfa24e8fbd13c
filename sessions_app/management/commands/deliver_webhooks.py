"""`python manage.py deliver_webhooks`: the worker that sends outbound webhooks.

Run one beside the web processes (any number is safe: deliveries are claimed
with SKIP LOCKED). `--once` sends what is due and exits, for cron or tests."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from sessions_app.services.webhooks import deliver_due


class Command(BaseCommand):
    help = "Send queued webhook deliveries, retrying failures with backoff."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Send what is due, then exit.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between polls.")

    def handle(self, *args, once: bool, interval: float, **options):
        while True:
            sent = deliver_due()
            if once:
                self.stdout.write(f"{sent} deliveries tried.")
                return
            if not sent:
                time.sleep(interval)
