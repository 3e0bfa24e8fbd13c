"""A database restart cuts every pooled connection at once: the next request
must get a fresh one at once, not time out behind psycopg's backoff between
checks of the broken ones (config/db_pool.py)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests.test_live_consumer import cut_app_connections

pytestmark = pytest.mark.django_db(transaction=True)
IDLE_IN_POOL = 9


def query_in_a_thread() -> BaseException | None:
    """SELECT 1 on a connection taken from the pool, as a request's thread does."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)
        finally:
            connection.close()  # back to the pool

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    return outcome[0]


def fill_pool(count: int) -> None:
    """`count` connections used at the same time, then all idle in the pool."""
    together = threading.Barrier(count)

    def hold() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        together.wait(timeout=30)
        connection.close()

    threads = [threading.Thread(target=hold) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def test_after_a_restart_the_next_query_gets_a_fresh_connection():
    if connection.vendor != "postgresql":
        pytest.skip("The connection pool is PostgreSQL's, which CI runs.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    fill_pool(IDLE_IN_POOL)
    assert connection.pool.get_stats()["pool_available"] >= IDLE_IN_POOL
    assert cut_app_connections(own) >= IDLE_IN_POOL
    # Before, psycopg's backoff between the broken ones outlasted the pool's
    # timeout, and this failed with PoolTimeout.
    assert query_in_a_thread() is None
