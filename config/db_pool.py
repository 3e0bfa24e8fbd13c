"""The check a pooled PostgreSQL connection passes before it is handed out.

psycopg's pool checks the connection it is about to hand out and, when that
one is broken, waits before taking the next: 1 s, then 2, 4, 8… So after a
database restart, which breaks every idle connection at once, a pool holding
nine of them gave up (PoolTimeout, 10 s) before reaching a good one. One
broken connection is taken as news about all of them: the whole pool is
checked at once, broken ones replaced, and the next try gets a fresh one.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool


def check_pooled(conn) -> None:
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        from django.db import connections

        pool = connections["default"].pool
        if pool is not None:
            # pool.check() uses psycopg's own check, not this one.
            pool.check()
        raise
