"""Helpers for tests that start the app's own daphne processes."""

from __future__ import annotations

import socket
from urllib.parse import quote

from django.db import connection


def database_url() -> str:
    """The test database, as a server process must reach it."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        credentials = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = quote(db["HOST"] or "", safe="")
        port = f":{db['PORT']}" if db["PORT"] else ""
        return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"
    raise NotImplementedError(f"No URL for the {db['ENGINE']} test database")


def listening_socket() -> socket.socket:
    """A bound, listening socket that a server process inherits (daphne --fd):
    connections wait in its backlog until daphne accepts them, so the first
    request simply waits for the server to be ready, with no port race and no
    polling."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock
