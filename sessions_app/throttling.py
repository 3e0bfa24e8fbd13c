"""Limits on how fast one client may write: sign-in attempts (django-axes calls
`lockout` when someone is locked out), changes made through the pages, and the
API. Each refusal is a 429 that says how long to wait, with `Retry-After`.

The counters are fixed one-minute windows in Django's cache. The default cache
lives in each process, so behind a load balancer each daphne process counts on
its own: a client gets at most the limit times the number of processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from sessions_app.models.tokens import token_digest

WINDOW_SECONDS = 60
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def clock() -> float:
    """The limits' clock (a function of its own, so a test can move it on)."""
    return time.time()


def retry_after(key: str, limit: int) -> int:
    """Count one more request for `key`; 0 when it is allowed, otherwise the
    seconds until the window ends and the client may try again."""
    now = clock()
    window = int(now // WINDOW_SECONDS)
    counter = f"rate:{key}:{window}"
    # add() then incr() is atomic per key in every cache backend Django ships.
    cache.add(counter, 0, timeout=WINDOW_SECONDS * 2)
    try:
        count = cache.incr(counter)
    except ValueError:  # expired between add() and incr()
        cache.add(counter, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    if count <= limit:
        return 0
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


def _wait(seconds: int) -> str:
    return "a second" if seconds == 1 else f"{seconds} seconds"


# --- Sign-in (django-axes) ---------------------------------------------------------


class SignInThrottle(AxesStandaloneBackend):
    """django-axes's check, first of the authentication backends: it refuses a
    locked-out sign-in before any password is checked. A sign-in without a
    request (a management command, the test client's login) has no client to
    throttle, and django-axes would refuse it outright."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """The page a locked-out sign-in gets. django-axes calls this with
    (request, response, credentials) or (request, credentials) depending on
    whether the request ran sync or async; neither is needed here."""
    cool_off = get_cool_off(request)
    minutes = math.ceil(cool_off.total_seconds() / 60)
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


# --- Changes through the pages -------------------------------------------------------


class WriteRateLimitMiddleware:
    """Every signed-in user may make WRITES_PER_MINUTE changes a minute through
    the pages, which no person clicking reaches; a script that floods the app
    gets 429. Token-authenticated API calls count against their token instead
    (see `api_rate_limit`), and sign-in attempts are django-axes's.

    Counted in process_view, after the CSRF check: a forged cross-site post is
    refused before it can use up anyone's allowance."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view, args, kwargs) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if request.method in UNSAFE_METHODS and user is not None and user.is_authenticated:
            wait = retry_after(f"writes:user:{user.pk}", settings.WRITES_PER_MINUTE)
            if wait:
                return too_many_writes(request, wait)
        return None


def too_many_writes(request: HttpRequest, wait: int) -> HttpResponse:
    message = f"You are making changes faster than anyone can click. Wait {_wait(wait)}."
    if request.headers.get("HX-Request"):
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    else:
        response = render(
            request, "429.html", {"message": message, "wait": _wait(wait)}, status=429
        )
    response["Retry-After"] = str(wait)
    return response


# --- The API ---------------------------------------------------------------------------


def api_rate_limit(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """API_REQUESTS_PER_MINUTE per token (per client address for requests
    without one), counted before the token is even looked up, so that guessing
    tokens is throttled too."""

    @wraps(view)
    def limited(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and raw.strip():
            key = "api:token:" + token_digest(raw.strip())
        else:
            key = "api:address:" + request.META.get("REMOTE_ADDR", "")
        wait = retry_after(key, settings.API_REQUESTS_PER_MINUTE)
        if wait:
            response = JsonResponse(
                {
                    "error": f"Too many requests with this token: at most "
                    f"{settings.API_REQUESTS_PER_MINUTE} a minute. Retry in {_wait(wait)}.",
                    "retry_after": wait,
                },
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return view(request, *args, **kwargs)

    return limited
