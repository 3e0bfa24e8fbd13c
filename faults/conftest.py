"""The fault suite's deployment, cast and report.

`make faults` runs `pytest -p no:django faults`: the suite sets Django up itself,
against a database it creates for the run (pytest-django would make its own
test database, which the daphne processes must share instead)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from faults.deployment import Deployment
from faults.scenario import RESULTS, Cast


def pytest_addoption(parser: pytest.Parser) -> None:
    # pyproject.toml's pytest settings name pytest-django's option, which is off here.
    with contextlib.suppress(ValueError):  # pytest-django is loaded after all
        parser.addini("DJANGO_SETTINGS_MODULE", "Django settings (used by tests/, not here)")


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    """PostgreSQL, Redis, two daphne processes and nginx, for the whole run."""
    deployment = Deployment()
    try:
        os.environ["DATABASE_URL"] = deployment.start_services()
        # The suite's own process writes the cast and reads the truth; it
        # broadcasts nothing, and must not reach any other Redis.
        os.environ.pop("REDIS_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        deployment.start_servers()
        yield deployment
    finally:
        from django.db import connections

        connections.close_all()
        for connection in connections.all():
            if hasattr(connection, "close_pool"):
                connection.close_pool()
        deployment.stop()


@pytest.fixture(scope="session")
def cast(deployment: Deployment) -> Cast:
    return Cast.create()


def pytest_terminal_summary(terminalreporter) -> None:
    if not RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault table")
    header = ("fault", "typed", "stored", "delivered per client", "lost", "dup", "recover")
    rows = [header] + [result.cells() for result in RESULTS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            write("  ".join("-" * width for width in widths))
    for result in RESULTS:
        for note in result.notes:
            write(f"{result.fault}: {note}")
