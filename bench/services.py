"""What the benchmark runs against: PostgreSQL and Redis (the machine's own where
they answer on their usual ports, private ones where they don't), and the
daphne processes and relay servers it starts on free loopback ports.

Everything started here is stopped by `Services.close()`, and only that.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60
# The machine's Redis is shared: the benchmark keeps to a database of its own.
REDIS_DB = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_socket() -> socket.socket:
    """A bound, listening socket for a server to inherit: clients wait in its
    backlog until the server accepts, so there is no port race and no polling."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def redis_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    """One process serving on an inherited socket."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.log = logs / f"{name}.log"
        with listening_socket() as sock, self.log.open("w") as output:
            self.port = sock.getsockname()[1]
            fd = str(sock.fileno())
            self.process = subprocess.Popen(
                [arg.replace("{fd}", fd) for arg in argv],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=[sock.fileno()],
            )

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Services:
    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ensemble-bench-"))
        self.servers: list[Server] = []
        self.databases: list[str] = []
        self.private_pg: str | None = None
        self.private_redis: int | None = None
        self.pg_port = 5432
        self.redis_port = 6379
        self.notes: list[str] = []

    # --- PostgreSQL and Redis ---------------------------------------------------------------

    def start(self) -> None:
        if not answers(self.pg_port):
            self._start_postgres()
        if not redis_answers(self.redis_port):
            self._start_redis()

    def _start_postgres(self) -> None:
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version)
        if not bindirs:
            raise RuntimeError("No PostgreSQL on 127.0.0.1:5432 and none installed to start.")
        bindir, data = bindirs[-1], self.workdir / "pg"
        self.pg_port = free_port()
        data.mkdir()
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_postgres:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(data, "postgres")
        subprocess.run(
            [*as_postgres, f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = f"-p {self.pg_port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *as_postgres,
                f"{bindir}/pg_ctl",
                "-D",
                str(data),
                "-w",
                "-l",
                str(self.workdir / "pg.log"),
                "start",
                "-o",
                options,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.private_pg = bindir
        self.notes.append(f"private PostgreSQL on port {self.pg_port}")

    def _start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("No Redis on 127.0.0.1:6379 and no redis-server to start.")
        self.redis_port = free_port()
        subprocess.run(
            [
                binary,
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while not redis_answers(self.redis_port):
            if time.monotonic() > deadline:
                raise RuntimeError("The private redis-server did not start.")
            time.sleep(0.1)
        self.private_redis = self.redis_port
        self.notes.append(f"private Redis on port {self.redis_port}")

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{REDIS_DB}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self._admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{name}"

    @property
    def _admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    # --- Servers ----------------------------------------------------------------------------

    def daphne(self, name: str, env: dict[str, str]) -> Server:
        server = Server(
            name,
            [sys.executable, "-m", "daphne", "--fd", "{fd}", "config.asgi:application"],
            env,
            self.workdir,
        )
        self.servers.append(server)
        return server

    def ceiling(self) -> Server:
        server = Server(
            "ceiling",
            [sys.executable, "-m", "bench.ceiling", "{fd}"],
            os.environ.copy(),
            self.workdir,
        )
        self.servers.append(server)
        return server

    def wait_ready(self, servers: list[Server], path: str = "/accounts/login/") -> None:
        for server in servers:
            try:
                with urllib.request.urlopen(server.http + path, timeout=START_SECONDS) as answer:
                    assert answer.status == 200
            except (OSError, AssertionError) as error:
                raise RuntimeError(
                    f"{server.name} did not answer ({error}):\n{server.log.read_text()}"
                ) from error

    def stop(self, servers: list[Server]) -> None:
        for server in servers:
            server.stop()
            self.servers.remove(server)

    def close(self) -> None:
        for server in list(self.servers):
            server.stop()
        for name in self.databases:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(self._admin_url, autocommit=True) as admin,
            ):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.private_redis:
            subprocess.run(
                ["redis-cli", "-p", str(self.private_redis), "shutdown", "nosave"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        if self.private_pg:
            as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
            subprocess.run(
                [
                    *as_postgres,
                    f"{self.private_pg}/pg_ctl",
                    "-D",
                    str(self.workdir / "pg"),
                    "-m",
                    "fast",
                    "stop",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(self.workdir, ignore_errors=True)


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in path.split("/")[-2].split(".") if part.isdigit())
