"""Real-browser tests: Debian's Chromium, driven by Playwright, against a real
daphne process that serves the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.servers import database_url, listening_socket

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_SECONDS = 30


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


def find_chromium() -> str:
    path = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    reason = f"No Chromium at {path} (set CHROMIUM to a Chromium executable)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and REQUIRE_BROWSER=1 forbids skipping browser tests.")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": find_chromium(),
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session", autouse=True)
def allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API leaves an event loop running in the main thread,
    and Django then refuses ORM calls from it. Browser tests run last (see the
    root conftest), so this session fixture only covers them."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def fast_password_hasher() -> None:
    """Keep the default hashers: the server process checks passwords with them."""


@pytest.fixture
def app_server(transactional_db, tmp_path: Path) -> Iterator[str]:
    """A daphne process serving the test database; yields its base URL.

    Rows the test writes must be committed for the server to see them, hence
    the transactional database (flushed after each test)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env |= {
        "DATABASE_URL": database_url(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "HTTPS_ONLY": "0",
    }
    log = tmp_path / "daphne.log"
    with listening_socket() as sock, log.open("w") as output:
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(sock.fileno())]
            + ["config.asgi:application"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=[sock.fileno()],
        )
    try:
        try:
            with urllib.request.urlopen(
                f"{base_url}/accounts/login/", timeout=SERVER_START_SECONDS
            ) as response:
                assert response.status == 200
        except (OSError, AssertionError) as error:
            server.kill()
            server.wait()
            raise RuntimeError(
                f"The app server did not serve its login page ({error}). "
                f"Its output:\n{log.read_text()}"
            ) from error
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        # Shown by pytest only when the test fails.
        print(f"--- daphne output ---\n{log.read_text()}")


def login(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")


@pytest.fixture
def csp_violations(context) -> list[str]:
    """Every Content-Security-Policy violation reported by any page of the test's context."""
    found: list[str] = []
    context.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found
