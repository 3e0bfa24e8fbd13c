"""Outbound webhooks: signed events on decisions and rollout changes, sent by a
worker outside the request, retried with backoff, visible to the team's owner."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import Webhook, WebhookDelivery
from sessions_app.services import outcome, rollout
from sessions_app.services.features import create_feature
from sessions_app.services.webhooks import MAX_ATTEMPTS, deliver_due

Status = WebhookDelivery.Status


class Receiver:
    """A webhook receiver on loopback that checks signatures as a real one would."""

    def __init__(self, secret: str, answers: list[int]):
        self.secret, self.answers, self.received = secret, list(answers), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                parts = dict(
                    p.split("=", 1) for p in self.headers["X-Ensemble-Signature"].split(",")
                )
                expected = hmac.new(
                    receiver.secret.encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256
                ).hexdigest()
                fresh = abs(time.time() - int(parts["t"])) < 300
                valid = hmac.compare_digest(expected, parts["v1"]) and fresh
                receiver.received.append(
                    (self.headers["X-Ensemble-Event"], json.loads(body), valid)
                )
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plan(team):
    return create_feature(team=team, data={"name": "Bulk export", "flag_key": "bulk-export"})


@pytest.fixture
def receiver_factory():
    made = []

    def make(webhook: Webhook, answers=()):
        receiver = Receiver(webhook.secret, list(answers))
        webhook.url = receiver.url
        webhook.save()
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def webhook(team, facilitator):
    return Webhook.objects.create(team=team, url="http://127.0.0.1:9/", created_by=facilitator)


def decide(session, facilitator, plan):
    session.feature = plan
    session.status = "review"
    session.save()
    return outcome.record_decision(
        session=session, by=facilitator, data={"outcome": "go", "rationale": "Ready."}
    )


def test_a_decision_is_sent_signed_to_the_receiver(
    webhook, receiver_factory, session, facilitator, plan
):
    receiver = receiver_factory(webhook)
    decide(session, facilitator, plan)
    assert WebhookDelivery.objects.get().status == Status.PENDING  # nothing sent in the request

    assert deliver_due() == 1

    ((event, body, valid),) = receiver.received
    assert (event, valid) == ("decision.recorded", True)
    assert body["decision"]["outcome"] == "go"
    assert body["feature"]["flag_key"] == "bulk-export"
    assert WebhookDelivery.objects.get().status == Status.DELIVERED


def test_a_rollout_change_is_sent(webhook, receiver_factory, facilitator, plan):
    receiver = receiver_factory(webhook)
    internal = plan.rollout_stages.get(position=1)
    rollout.approve(stage=internal, by=facilitator)
    call_command("deliver_webhooks", "--once", stdout=StringIO())
    ((event, body, valid),) = receiver.received
    assert (event, body["action"], body["stage"]["name"], valid) == (
        "rollout.stage_changed",
        "approved",
        "Internal tenant",
        True,
    )


def test_a_failing_receiver_is_retried_with_backoff(
    webhook, receiver_factory, session, facilitator, plan
):
    receiver = receiver_factory(webhook, answers=[500])
    decide(session, facilitator, plan)
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Status.PENDING,
        1,
        500,
    )
    assert delivery.next_attempt_at > timezone.now()
    # Not due yet: nothing is sent again until the backoff has passed.
    assert deliver_due() == 0
    assert deliver_due(now=delivery.next_attempt_at + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 2)
    assert len(receiver.received) == 2


def test_a_receiver_that_never_answers_is_given_up_after_the_last_attempt(
    webhook, session, facilitator, plan
):
    decide(session, facilitator, plan)  # the webhook points at a closed port
    now = timezone.now()
    for _ in range(MAX_ATTEMPTS):
        now += timedelta(hours=2)
        deliver_due(now=now)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, MAX_ATTEMPTS)
    assert delivery.last_error


def test_the_owner_adds_a_webhook_and_sees_its_deliveries(facilitator_client, team):
    response = facilitator_client.post(
        reverse("webhook_add"), {"url": "https://hooks.example.com/x"}
    )
    assert response.status_code == 302
    webhook = Webhook.objects.get(team=team)
    page = facilitator_client.get(reverse("team")).content.decode()
    assert webhook.secret in page and "https://hooks.example.com/x" in page


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://files.example.com/", "not a url"])
def test_a_webhook_url_that_is_not_http_is_refused(facilitator_client, team, url):
    response = facilitator_client.post(reverse("webhook_add"), {"url": url})
    assert response.status_code == 400
    assert "Enter a valid URL." in response.content.decode()
    assert not Webhook.objects.exists()


def test_members_who_are_not_owners_manage_no_webhooks(teammate_client, webhook):
    response = teammate_client.post(reverse("webhook_add"), {"url": "https://hooks.example.com/"})
    assert response.status_code == 403
    remove = teammate_client.post(reverse("webhook_remove", kwargs={"webhook_id": webhook.pk}))
    assert remove.status_code == 403
    assert Webhook.objects.count() == 1
    assert webhook.secret not in teammate_client.get(reverse("team")).content.decode()
