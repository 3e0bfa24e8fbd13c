"""`make bench`: the live room against the floor of its own stack.

Starts its own servers, creates its own data, runs every scenario for the
embedded deployment (one daphne, SQLite, in-memory layer) and the production
one (two daphne processes, PostgreSQL, Redis), prints a table and writes
bench/results.json. BENCH_QUICK=1 runs a smaller version of everything.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import APP, CEILING, FLOOR, Load
from bench.services import PROJECT_ROOT, Server, Services, rss_bytes

RESULTS = Path(__file__).resolve().parent / "results.json"
P99_LIMIT_MS = 250
DRAIN_QUIET_SECONDS = 2


def env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


@dataclass
class Config:
    quick: bool
    rooms: int
    clients: int
    posters: int
    rate: float  # notes per second per room
    seconds: float
    step_seconds: float
    max_steps: int
    idle: int
    idle_room_size: int
    page_notes: tuple[int, ...]
    page_runs: int
    page_budget: float
    skip: frozenset[str]

    @classmethod
    def from_env(cls) -> Config:
        quick = os.environ.get("BENCH_QUICK", "") not in {"", "0"}
        return cls(
            quick=quick,
            rooms=int(env_number("BENCH_ROOMS", 4 if quick else 10)),
            clients=int(env_number("BENCH_CLIENTS", 20 if quick else 50)),
            posters=int(env_number("BENCH_POSTERS", 2)),
            rate=env_number("BENCH_RATE", 5),
            seconds=env_number("BENCH_SECONDS", 5 if quick else 30),
            step_seconds=env_number("BENCH_STEP_SECONDS", 3 if quick else 6),
            max_steps=int(env_number("BENCH_MAX_STEPS", 2 if quick else 5)),
            idle=int(env_number("BENCH_IDLE", 200 if quick else 2000)),
            idle_room_size=50,
            page_notes=(100, 10_000),
            page_runs=int(env_number("BENCH_PAGE_RUNS", 1 if quick else 20)),
            page_budget=env_number("BENCH_PAGE_BUDGET", 0 if quick else 10),
            skip=frozenset(filter(None, os.environ.get("BENCH_SKIP", "").split(","))),
        )


def passes(report: dict[str, Any]) -> bool:
    return report["lost"] == 0 and report["p99_ms"] is not None and report["p99_ms"] <= P99_LIMIT_MS


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Deployment:
    def __init__(self, name: str, servers: list[Server], cookies: list[str], rooms: list[str]):
        self.name, self.servers, self.cookies = name, servers, cookies
        self.free_rooms = list(rooms)

    def take_rooms(self, count: int) -> list[str]:
        taken, self.free_rooms = self.free_rooms[:count], self.free_rooms[count:]
        if len(taken) < count:
            raise RuntimeError("the benchmark seeded too few rooms")
        return taken

    def pids(self) -> list[int]:
        return [server.process.pid for server in self.servers]


def room_urls(kind: str, servers: list[Server], room: str, clients: int) -> tuple[list[str], str]:
    """Each room's clients, spread over the servers as a load balancer would."""
    path = f"/ws/sessions/{room}/" if kind == APP else f"/ws/bench/floor/{room}/"
    if kind == CEILING:
        path = f"/{room}"
    urls = [servers[index % len(servers)].ws + path for index in range(clients)]
    return urls, servers[0].http


# The fan-out's seconds are split into this many slices, the app's and the
# floor's taking turns: both then run under the same conditions of a shared
# machine (whose load drifts over minutes), not one after the other.
SLICES = 3


async def open_load(
    cfg: Config, kind: str, servers: list[Server], cookies: list[str], rooms: list[str]
) -> Load:
    load = Load(kind, posters=cfg.posters)
    started = time.perf_counter()
    await load.connect([room_urls(kind, servers, room, cfg.clients) for room in rooms], cookies)
    load.connect_seconds = time.perf_counter() - started
    return load


async def fanouts(cfg: Config, loads: list[Load], pids) -> list[dict[str, Any]]:
    """The fan-out of each load at the configured rate, in SLICES turns each."""
    indexes = list(range(len(loads)))
    cpu, own = dict.fromkeys(indexes, 0.0), dict.fromkeys(indexes, 0.0)
    for load in loads:
        load.measure(list(range(len(load.rooms))), cfg.rate)
    for _ in range(SLICES):
        for index, load in enumerate(loads):
            cpu_before, own_before = cpu_seconds(pids), own_cpu_seconds()
            await load.post(cfg.rate, cfg.seconds / SLICES, list(range(len(load.rooms))))
            await load.drain(DRAIN_QUIET_SECONDS)
            cpu[index] += cpu_seconds(pids) - cpu_before
            own[index] += own_cpu_seconds() - own_before
    reports = []
    for index, load in enumerate(loads):
        report = load.report()
        report["server_cpu_share"] = round(cpu[index] / cfg.seconds, 2)
        report["client_cpu_share"] = round(own[index] / cfg.seconds, 2)
        report["connect_s"] = round(load.connect_seconds, 1)
        report["rooms"], report["clients_per_room"] = len(load.rooms), cfg.clients
        report["slices"] = SLICES
        reports.append(report)
    return reports


# A step past saturation leaves the servers busy for seconds after its drain
# gives up (queued broadcasts, replays): the next step waits until they are
# back within this share of a core of what they used at rest, at most
# SETTLE_LIMIT_SECONDS.
REST_MARGIN = 0.2
SETTLE_LIMIT_SECONDS = 15


async def cpu_share(pids, seconds: float) -> float:
    """The servers' CPU seconds per second over the next `seconds`."""
    before = cpu_seconds(pids)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pids) - before) / seconds


async def settled(pids, rest: float) -> float:
    """Wait until the servers are back at rest, so the work a step left behind
    does not fall on the next (the other load's, in turns). Returns the
    seconds waited."""
    started = time.perf_counter()
    while await cpu_share(pids, 0.5) > rest + REST_MARGIN:
        if time.perf_counter() - started > SETTLE_LIMIT_SECONDS:
            log(f"the servers were still busy after {SETTLE_LIMIT_SECONDS} s; stepping on")
            break
    return time.perf_counter() - started


class Search:
    """One load's search for its highest rate: doubling until a step fails,
    then halving the gap twice, until p99 passes the limit or a note is lost.
    Once a step held with a p99 past half the limit, the next is half as much
    again, not double: far past saturation a step and its drain take tens of
    seconds, which the full run's ten minutes cannot spare."""

    def __init__(self, cfg: Config, fanout: dict[str, Any]):
        self.max_steps = 0 if "saturation" in cfg.skip else cfg.max_steps
        self.held = cfg.rate if passes(fanout) else 0.0
        self.held_p99 = fanout["p99_ms"]
        self.failed: float | None = None
        self.steps: list[dict[str, Any]] = []

    def next_rate(self) -> float | None:
        """The rate per room to try next, or None when the search is over."""
        if not self.held or len(self.steps) >= self.max_steps:
            return None
        if self.failed is None:
            return self.held * (2 if self.held_p99 <= P99_LIMIT_MS / 2 else 1.5)
        if self.failed / self.held > 1.3:
            return (self.held + self.failed) / 2
        return None

    def record(self, rate: float, report: dict[str, Any]) -> None:
        self.steps.append(report)
        if passes(report):
            self.held, self.held_p99 = rate, report["p99_ms"]
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)


async def saturations(
    cfg: Config, loads: list[Load], fanouts: list[dict[str, Any]], pids
) -> list[dict[str, Any]]:
    """The fan-out's rooms of each load at rising rates. The loads' searches
    take turns, one step each, as the fan-outs do: the app's and the floor's
    steps then meet the same moments of a shared machine."""
    searches = [Search(cfg, fanout) for fanout in fanouts]
    # The fan-outs drained: what the servers use now, the clients all idle
    # but for their heartbeats, is their rest.
    rest = await cpu_share(pids, 1.0)

    async def step(load: Load, rate: float) -> dict[str, Any]:
        indexes = list(range(len(load.rooms)))
        settle_s = await settled(pids, rest)
        cpu, own = cpu_seconds(pids), own_cpu_seconds()
        load.measure(indexes, rate)
        await load.post(rate, cfg.step_seconds, indexes)
        await load.drain(DRAIN_QUIET_SECONDS)
        report = load.report()
        report["server_cpu_share"] = round((cpu_seconds(pids) - cpu) / cfg.step_seconds, 2)
        report["client_cpu_share"] = round((own_cpu_seconds() - own) / cfg.step_seconds, 2)
        report["settle_s"] = round(settle_s, 1)
        return report

    while any(search.next_rate() is not None for search in searches):
        for load, search in zip(loads, searches, strict=True):
            rate = search.next_rate()
            if rate is not None:
                search.record(rate, await step(load, rate))
    return [
        {
            "rate_per_s": round(search.held * len(load.rooms), 1),
            "steps": [
                {key: s[key] for key in ("rate_per_s", "p50_ms", "p99_ms", "lost", "resyncs")}
                | {key: s[key] for key in ("server_cpu_share", "client_cpu_share", "settle_s")}
                for s in search.steps
            ],
        }
        for load, search in zip(loads, searches, strict=True)
    ]


async def connections(cfg: Config, deployment: Deployment) -> dict[str, Any]:
    """One process holds `idle` live-room connections (in rooms of 50, each with
    its heartbeat) while one room of the fan-out runs on the same process."""
    server = deployment.servers[0]
    pid = server.process.pid
    idle = Load(APP, posters=0)
    count = max(1, round(cfg.idle / cfg.idle_room_size))
    rooms = deployment.take_rooms(count)
    before = rss_bytes(pid)
    await idle.connect(
        [room_urls(APP, [server], room, cfg.idle_room_size) for room in rooms], deployment.cookies
    )
    held = sum(len(room) for room in idle.rooms)
    await asyncio.sleep(2)
    after = rss_bytes(pid)
    try:
        load = await open_load(cfg, APP, [server], deployment.cookies, deployment.take_rooms(1))
        try:
            [fanout] = await fanouts(cfg, [load], [pid])
        finally:
            await load.close()
    finally:
        await idle.close()
    return {
        "held": held,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "bytes_per_connection": round((after - before) / held),
        "p50_ms": fanout["p50_ms"],
        "p99_ms": fanout["p99_ms"],
        "lost": fanout["lost"],
        "fanout": fanout,
    }


def base_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "REDIS_URL", "DATABASE_URL"}
    }
    env.setdefault("SECRET_KEY", "insecure-key-for-the-benchmark-only")
    env |= {
        "HTTPS_ONLY": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "ENSEMBLE_BENCH_FLOOR": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def django_json(env: dict[str, str], module: str, spec: dict[str, Any]) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", module, json.dumps(spec)],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run(cfg: Config, services: Services) -> dict[str, Any]:
    results: dict[str, Any] = {"scenarios": {}, "saturation": {}, "ratios": {}}
    env = base_env()
    manage(
        env | {"DATABASE_URL": f"sqlite:///{services.workdir}/static.sqlite3"},
        "collectstatic",
        "--noinput",
        "--verbosity",
        "0",
    )
    tag = uuid.uuid4().hex[:6]
    deployments = {
        "embedded": (env | {"DATABASE_URL": f"sqlite:///{services.workdir}/embedded.sqlite3"}, 1),
        "production": (
            env
            | {
                "DATABASE_URL": services.create_database(f"ensemble_bench_{tag}"),
                "REDIS_URL": services.redis_url,
            },
            2,
        ),
    }
    idle_rooms = max(1, round(cfg.idle / cfg.idle_room_size))
    for name, (denv, processes) in deployments.items():
        if name in cfg.skip:
            continue
        log(f"{name}: migrate, seed")
        manage(denv, "migrate", "--noinput")
        seeded = django_json(
            denv,
            "bench.seed",
            {
                "users": max(cfg.clients, cfg.idle_room_size),
                "rooms": cfg.rooms + idle_rooms + 1,
                "tag": f"{tag}-{name}",
            },
        )
        servers = [services.daphne(f"{name}-{index}", denv) for index in range(processes)]
        services.wait_ready(servers)
        deployment = Deployment(name, servers, seeded["cookies"], seeded["rooms"])
        log(f"{name}: fan-out, app and floor in turns")
        app_rooms = deployment.take_rooms(cfg.rooms)
        floor_rooms = [f"{tag}-{index}" for index in range(cfg.rooms)]
        loads = [
            await open_load(cfg, APP, servers, deployment.cookies, app_rooms),
            await open_load(cfg, FLOOR, servers, deployment.cookies, floor_rooms),
        ]
        try:
            reports = await fanouts(cfg, loads, deployment.pids())
            log(f"{name}: saturation, app and floor in turns")
            searched = await saturations(cfg, loads, reports, deployment.pids())
            for label, fanout, search in zip(("fanout", "floor"), reports, searched, strict=True):
                results["scenarios"][f"{name}/{label}"] = fanout
                results["saturation"][f"{name}/{label}"] = search
        finally:
            # Both sets of clients until both searches end: 500 live-room
            # clients leaving at once is seconds of work for the servers
            # (presence, groups), which would fall on the floor's steps.
            for load in loads:
                await load.close()
        if name == "production" and "connections" not in cfg.skip:
            log(f"{name}: {cfg.idle} idle connections on one process")
            results["connections"] = await connections(cfg, deployment)
        if name == "production" and "pages" not in cfg.skip:
            log(f"{name}: pages")
            results["pages"] = django_json(
                denv,
                "bench.pages",
                {
                    "notes": list(cfg.page_notes),
                    "runs": cfg.page_runs,
                    "budget": cfg.page_budget,
                    "tag": tag,
                },
            )
        services.stop(servers)
        app, floor = (results["scenarios"][f"{name}/{label}"] for label in ("fanout", "floor"))
        for figure in ("p99", "p50"):
            results["ratios"][f"{name}/fanout_{figure}_vs_floor"] = ratio(
                app[f"{figure}_ms"], floor[f"{figure}_ms"]
            )
        sat_app, sat_floor = (
            results["saturation"][f"{name}/{label}"]["rate_per_s"] for label in ("fanout", "floor")
        )
        results["ratios"][f"{name}/saturation_vs_floor"] = ratio(sat_app, sat_floor)
    if "ceiling" in cfg.skip:
        return results
    log("ceiling: plain websockets broadcast")
    ceiling = services.ceiling()
    # Its fan-out only: the ceiling's saturation lies far past what one client
    # process can drive on a small machine.
    load = await open_load(cfg, CEILING, [ceiling], [""], [f"{tag}-{i}" for i in range(cfg.rooms)])
    try:
        [fanout] = await fanouts(cfg, [load], [ceiling.process.pid])
    finally:
        await load.close()
    results["scenarios"]["ceiling/fanout"] = fanout
    services.stop([ceiling])
    return results


def ratio(app: float | None, floor: float | None) -> float | None:
    if not app or not floor:
        return None
    return round(app / floor, 2)


def machine(cfg: Config, load_before: tuple[float, ...]) -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "quick": cfg.quick,
        "config": {
            key: sorted(value) if isinstance(value, frozenset) else value
            for key, value in cfg.__dict__.items()
            if key != "quick"
        },
    }


def table(results: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    lines = []
    head = (
        "scenario",
        "rate/s",
        "p50",
        "p95",
        "p99",
        "max",
        "expected",
        "delivered",
        "lost",
        "dup",
        "ooo",
        "resync",
        "srv cpu",
        "cli cpu",
    )
    rows = [head]
    for name, s in results["scenarios"].items():
        rows.append(
            (
                name,
                s["rate_per_s"],
                s["p50_ms"],
                s["p95_ms"],
                s["p99_ms"],
                s["max_ms"],
                s["expected"],
                s["delivered"],
                s["lost"],
                s["duplicates"],
                s["out_of_order"],
                s["resyncs"],
                s["server_cpu_share"],
                s["client_cpu_share"],
            )
        )
    c = results.get("connections")
    if c:
        s = c["fanout"]
        rows.append(
            (
                f"connections ({c['held']} idle)",
                s["rate_per_s"],
                s["p50_ms"],
                s["p95_ms"],
                s["p99_ms"],
                s["max_ms"],
                s["expected"],
                s["delivered"],
                s["lost"],
                s["duplicates"],
                s["out_of_order"],
                s["resyncs"],
                s["server_cpu_share"],
                s["client_cpu_share"],
            )
        )
    widths = [max(len(cell(row[i])) for row in rows) for i in range(len(head))]
    lines.append("Fan-out (latency in ms, send -> arrival at every other client)")
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell(v).rjust(w) if i else cell(v).ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("Saturation (highest total rate with p99 <= 250 ms and nothing lost)")
    for name, s in results["saturation"].items():
        tried = ", ".join(
            f"{step['rate_per_s']:g}:{cell(step['p99_ms'])}ms/{step['lost']}lost"
            for step in s["steps"]
        )
        lines.append(f"  {name:<22} {s['rate_per_s']:>7} notes/s   steps: {tried or '-'}")
    lines.append("")
    lines.append("Ratios (app / floor)")
    for name, value in results["ratios"].items():
        lines.append(f"  {name:<40} {cell(value)}")
    if c:
        lines.append("")
        lines.append(
            f"Connections: {c['held']} held by one process, "
            f"{c['bytes_per_connection'] / 1024:.1f} KB each; fan-out beside them "
            f"p50 {cell(c['p50_ms'])} ms, p99 {cell(c['p99_ms'])} ms, lost {c['lost']}"
        )
    if results.get("pages"):
        lines.append("")
        lines.append("Pages (server time, median; queries)")
        for name, p in results["pages"].items():
            lines.append(
                f"  {name:<20} {p['median_ms']:>9} ms  (first byte {p['first_byte_ms']:>8} ms)"
                f"  {p['queries']:>4} queries  ({p['runs']} runs)"
            )
    return "\n".join(lines)


def main() -> int:
    cfg = Config.from_env()
    load_before = os.getloadavg()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = cfg.idle + cfg.rooms * cfg.clients + 1024
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted * 2), hard))
    services = Services()
    started = time.perf_counter()
    try:
        services.start()
        results = asyncio.run(run(cfg, services))
    except BaseException:
        for log_file in sorted(services.workdir.glob("*.log")):
            print(f"--- {log_file.name} (last lines)", file=sys.stderr)
            print("\n".join(log_file.read_text().splitlines()[-40:]), file=sys.stderr)
        raise
    finally:
        services.close()
    results = {"machine": machine(cfg, load_before), **results}
    results["machine"]["services"] = services.notes or ["machine's PostgreSQL and Redis"]
    results["machine"]["duration_s"] = round(time.perf_counter() - started)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nWrote {RESULTS.relative_to(PROJECT_ROOT)} in {results['machine']['duration_s']} s.")
    return 0
