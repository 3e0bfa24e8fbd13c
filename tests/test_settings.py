"""Settings come from the environment; production settings refuse to start unsafe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'options': db.get('OPTIONS', {}), "
    "'conn_max_age': db['CONN_MAX_AGE'], 'layer': settings.CHANNEL_LAYERS['default'], "
    "'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS}, default=str))"
)


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    # A clean environment: only what a deployment would set.
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def probe(**env: str) -> dict:
    result = run(["-c", PROBE], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_default_is_sqlite_in_wal_mode_and_the_in_memory_layer():
    found = probe(DEBUG="1")
    assert found["engine"] == "django.db.backends.sqlite3"
    assert "journal_mode=WAL" in found["options"]["init_command"]
    assert found["layer"]["BACKEND"] == "config.inmemory_layer.SweepingInMemoryChannelLayer"
    assert found["hosts"] == ["127.0.0.1", "localhost"]


def test_database_url_and_redis_url_switch_to_postgresql_and_redis():
    found = probe(
        DEBUG="1",
        DATABASE_URL="postgres://app:secret@db.internal:5432/ensemble",
        REDIS_URL="redis://cache.internal:6379/0",
    )
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["options"]["pool"]
    assert found["conn_max_age"] == 0
    layer = found["layer"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    # redis-py's default 5 s socket timeout would kill idle consumers.
    # redis-py 8 fails commands past 100 connections at once (see
    # test_several_processes for a crowd connecting at once).
    assert layer["CONFIG"]["hosts"] == [
        {
            "address": "redis://cache.internal:6379/0",
            "socket_timeout": None,
            "max_connections": 2000,
        }
    ]
    assert layer["CONFIG"]["capacity"] > 100


def test_missing_secret_key_with_debug_off_stops_with_a_clear_message():
    result = run(["manage.py", "check"])
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_settings_pass_the_deploy_check():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY="k" * 20 + "-a-long-and-random-enough-production-secret-9f8e7d6c",
        ALLOWED_HOSTS="ensemble.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_pages_carry_a_csp_with_a_script_nonce(client):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in response.content.decode()
    assert "unsafe-inline" not in policy
