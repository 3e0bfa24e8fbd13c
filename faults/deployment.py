"""The production deployment on loopback: PostgreSQL, a private Redis, two daphne
processes and nginx in front of them, each started (and stopped) by the suite.

Everything listens on 127.0.0.1 only. The suite owns every process it starts and
the database it creates; it never touches another Redis, nor another database's
connections."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60
# Every connection the app makes says who it is, so that the database fault
# terminates the app's connections and nothing else.
APP_CONNECTION_NAME = "ensemble-app"
DATABASE_PREFIX = "ensemble_faults_"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], *, seconds: float, what: str) -> None:
    """Polls a condition that has no event to await (a process coming up)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


def stop(process: subprocess.Popen | None, *, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- PostgreSQL -------------------------------------------------------------------------------


class Postgres:
    """A PostgreSQL server to create the suite's own database on: the one
    DATABASE_URL names (its server only) or 127.0.0.1:5432 when they answer,
    else a private throwaway cluster."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.private: tuple[str, Path] | None = None  # (bin directory, data directory)
        configured = os.environ.get("DATABASE_URL", "")
        candidates = []
        if configured.startswith(("postgres://", "postgresql://")):
            candidates.append(configured)
        candidates.append("postgres://postgres@127.0.0.1:5432/postgres")
        for url in candidates:
            server = urlsplit(url)._replace(path="/postgres", query="")
            if self._answers(urlunsplit(server)):
                self.server = server
                return
        self.server = self._start_private()

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return True
        except psycopg.Error:
            return False

    def _start_private(self):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found or shutil.which("runuser") is None:
            raise RuntimeError(
                "No PostgreSQL answers on 127.0.0.1:5432 (nor at DATABASE_URL), and no "
                "initdb to start a private one: install PostgreSQL."
            )
        bindir = found[-1].parent
        data = self.workdir / "pg"
        data.mkdir()
        shutil.chown(self.workdir, "postgres")
        shutil.chown(data, "postgres")
        port = free_port()
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*as_postgres, bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [*as_postgres, bindir / "pg_ctl", "-D", data, "-w", "-l", self.workdir / "pg.log"]
            + ["start", "-o", f"-p {port} -k {self.workdir} -c listen_addresses=127.0.0.1"]
            + ["-o", "-c fsync=off"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.private = (str(bindir), data)
        return urlsplit(f"postgres://postgres@127.0.0.1:{port}/postgres")

    def url(self, database: str, **query: str) -> str:
        parts = "&".join(f"{key}={value}" for key, value in query.items())
        return urlunsplit(self.server._replace(path=f"/{database}", query=parts))

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(urlunsplit(self.server), autocommit=True)

    def create_database(self) -> str:
        name = f"{DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        with self.admin() as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        assert name.startswith(DATABASE_PREFIX)
        with self.admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate_app_connections(self, database: str) -> int:
        """pg_terminate_backend for the app's connections to the suite's database."""
        with self.admin() as db:
            rows = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
                [database, APP_CONNECTION_NAME],
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def stop(self) -> None:
        if self.private:
            bindir, data = self.private
            subprocess.run(
                ["runuser", "-u", "postgres", "--", f"{bindir}/pg_ctl", "-D", data]
                + ["-m", "fast", "stop"],
                stdout=subprocess.DEVNULL,
                check=False,
            )


# --- Redis ----------------------------------------------------------------------------------


class Redis:
    """A private redis-server on a port of its own, which the suite may kill and
    restart at will (never the machine's shared one)."""

    def __init__(self, workdir: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis)")
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def _pong(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=(self.workdir / "redis.log").open("a"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self._pong, seconds=START_SECONDS, what="redis-server to answer")

    def restart(self) -> None:
        """Gone and back empty: every group membership and queued message is lost."""
        stop(self.process)
        self.start()

    def kill_clients(self) -> int:
        """CLIENT KILL every connection but the one asking."""
        return int(self.client().client_kill_filter(_type="normal", skipme=True))

    def stop(self) -> None:
        stop(self.process)


# --- daphne -----------------------------------------------------------------------------------


class Daphne:
    """One daphne process on a fixed port, so that it can be killed and started again
    where nginx and its direct clients expect it."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path):
        self.name, self.env = name, env
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"daphne-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as output:
            output.write(f"--- start {time.strftime('%H:%M:%S')} ---\n")
            output.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
                + ["config.asgi:application"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.serves, seconds=START_SECONDS, what=f"daphne {self.name} to serve")

    def serves(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"daphne {self.name} exited:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.base_url}/accounts/login/", timeout=5) as page:
                return page.status == 200
        except OSError:
            return False

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self, *, timeout: float = 30) -> None:
        """A graceful stop, as a deploy does it; waits for the process to exit."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Stuck: faulthandler writes every thread's stack to the log.
            self.process.send_signal(signal.SIGABRT)
            self.process.wait()
            raise RuntimeError(
                f"daphne {self.name} did not exit within {timeout} s of SIGTERM:\n"
                + self.log.read_text()[-12000:]
            ) from None

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"No VmRSS for daphne {self.name}")

    def stop(self) -> None:
        stop(self.process)


# --- nginx ------------------------------------------------------------------------------------

# The proxy part is what the README shows for running Ensemble on several
# processes or machines; the rest keeps a throwaway nginx inside its temp dir.
NGINX_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream ensemble {{
{servers}
    }}

    # A websocket handshake asks to upgrade the connection; other requests don't.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://ensemble;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # A process that is down or restarting: try the next one.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            # Live rooms send a heartbeat every 15 s; a silent socket is dead.
            proxy_read_timeout 60s;
            proxy_send_timeout 60s;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, upstreams: list[Daphne], workdir: Path):
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(binary, os.X_OK):
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        self.dir = workdir / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"        server 127.0.0.1:{d.port} max_fails=1 fail_timeout=2s;" for d in upstreams
        )
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port, servers=servers))
        self.process = subprocess.Popen(
            [binary, "-p", str(self.dir), "-e", str(self.dir / "nginx-error.log"), "-c", conf],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "nginx-stderr.log").open("w"),
        )
        wait_until(self._serves, seconds=START_SECONDS, what="nginx to proxy the app")

    def _serves(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("nginx exited:\n" + (self.dir / "nginx-stderr.log").read_text())
        try:
            with urllib.request.urlopen(f"{self.base_url}/accounts/login/", timeout=5) as page:
                return page.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        stop(self.process)


# --- All of it ------------------------------------------------------------------------------


class Deployment:
    """PostgreSQL (the suite's own database), Redis, daphne `a` and `b`, and nginx."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ensemble-faults-"))
        self.postgres: Postgres | None = None
        self.database = ""
        self.redis: Redis | None = None
        self.daphnes: list[Daphne] = []
        self.nginx: Nginx | None = None

    def start_services(self) -> str:
        """PostgreSQL and Redis; returns the database URL for the suite's own process."""
        self.postgres = Postgres(self.workdir)
        self.database = self.postgres.create_database()
        self.redis = Redis(self.workdir)
        return self.postgres.url(self.database)

    def start_servers(self) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "PYTEST_CURRENT_TEST"}
        }
        env |= {
            "DATABASE_URL": self.postgres.url(self.database, application_name=APP_CONNECTION_NAME),
            "REDIS_URL": self.redis.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "HTTPS_ONLY": "0",
            "BEHIND_PROXY": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONFAULTHANDLER": "1",
        }
        self.daphnes = [Daphne(name, env, self.workdir) for name in ("a", "b")]
        for daphne in self.daphnes:
            daphne.start()
        self.nginx = Nginx(self.daphnes, self.workdir)

    @property
    def a(self) -> Daphne:
        return self.daphnes[0]

    @property
    def b(self) -> Daphne:
        return self.daphnes[1]

    def logs(self) -> str:
        parts = []
        for daphne in self.daphnes:
            if daphne.log.exists():
                parts.append(f"--- daphne {daphne.name} ---\n{daphne.log.read_text()[-20000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for part in (self.nginx, *self.daphnes, self.redis):
            if part is not None:
                part.stop()
        if self.postgres is not None:
            if self.database:
                self.postgres.drop_database(self.database)
            self.postgres.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
