"""Production settings turn on HTTPS everywhere: secure cookies, HSTS and the
redirect to HTTPS; behind a proxy the app trusts its X-Forwarded-Proto (and its
X-Forwarded-For for sign-in throttling) only when told to. The settings are
read in a fresh process, from the environment a deployment sets."""

from __future__ import annotations

import json

from django.test import Client

from tests.factories import PASSWORD
from tests.test_settings import run

PROBE = (
    "import json, django; from django.conf import settings as s; django.setup(); "
    "print(json.dumps({name: getattr(s, name, None) for name in ["
    "'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
    "'SESSION_COOKIE_HTTPONLY', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
    "'SECURE_HSTS_PRELOAD', 'SECURE_PROXY_SSL_HEADER', 'SECURE_CONTENT_TYPE_NOSNIFF', "
    "'X_FRAME_OPTIONS', 'AUTHENTICATION_BACKENDS', 'AXES_IPWARE_META_PRECEDENCE_ORDER', "
    "'AXES_IPWARE_PROXY_COUNT', 'AXES_IPWARE_PROXY_ORDER', 'MIDDLEWARE']}))"
)
PRODUCTION = {
    "SECRET_KEY": "k" * 20 + "-a-long-and-random-enough-production-secret-9f8e7d6c",
    "ALLOWED_HOSTS": "ensemble.example.com",
}


def settings_with(**env: str) -> dict:
    result = run(["-c", PROBE], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_settings_redirect_to_https_with_secure_cookies_and_hsts():
    found = settings_with(**PRODUCTION)

    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SESSION_COOKIE_SECURE"] is True
    assert found["CSRF_COOKIE_SECURE"] is True
    assert found["SESSION_COOKIE_HTTPONLY"] is True
    assert found["SECURE_HSTS_SECONDS"] >= 60 * 60 * 24 * 365
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert found["SECURE_HSTS_PRELOAD"] is True
    assert found["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert found["X_FRAME_OPTIONS"] == "DENY"
    # Without BEHIND_PROXY no header may claim a request came over HTTPS.
    assert found["SECURE_PROXY_SSL_HEADER"] is None
    assert found["AXES_IPWARE_META_PRECEDENCE_ORDER"] == ["REMOTE_ADDR"]


def test_behind_a_proxy_the_forwarded_proto_and_client_address_are_trusted():
    found = settings_with(**PRODUCTION, BEHIND_PROXY="1")

    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["SECURE_SSL_REDIRECT"] is True
    # The address the proxy appended, not one a client wrote into the header.
    assert found["AXES_IPWARE_META_PRECEDENCE_ORDER"] == ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    assert (found["AXES_IPWARE_PROXY_COUNT"], found["AXES_IPWARE_PROXY_ORDER"]) == (
        1,
        "right-most",
    )


def test_https_only_off_serves_plain_http_without_secure_cookies_or_hsts():
    found = settings_with(**PRODUCTION, HTTPS_ONLY="0")

    assert found["SECURE_SSL_REDIRECT"] is False
    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["CSRF_COOKIE_SECURE"] is False
    assert found["SECURE_HSTS_SECONDS"] == 0


def test_sign_in_throttling_is_on_in_production():
    found = settings_with(**PRODUCTION)

    assert found["AUTHENTICATION_BACKENDS"][0] == "sessions_app.throttling.SignInThrottle"
    assert found["MIDDLEWARE"][-1] == "axes.middleware.AxesMiddleware"
    assert "sessions_app.throttling.WriteRateLimitMiddleware" in found["MIDDLEWARE"]


def test_the_deploy_check_passes_behind_a_proxy_too():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        **PRODUCTION,
        BEHIND_PROXY="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_behind_a_proxy_plain_http_is_redirected_and_https_gets_hsts_and_secure_cookies(
    settings, facilitator
):
    """What the settings above do to requests, with production's values."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client = Client()

    response = client.get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"

    https = {"X-Forwarded-Proto": "https"}
    response = client.get("/accounts/login/", headers=https)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response.cookies["csrftoken"]["secure"]

    response = client.post(
        "/accounts/login/", {"username": "dana", "password": PASSWORD}, headers=https
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"]
    assert response.cookies["sessionid"]["httponly"]
