"""The faults a production deployment meets, each injected mid-stream into a
live room: after each one, every note typed is stored exactly once and every
client shows every stored note exactly once, in seq order, connected again
without a reload."""

from __future__ import annotations

import asyncio
import signal
import time

from asgiref.sync import sync_to_async

from faults.clients import Link
from faults.deployment import Deployment
from faults.scenario import Cast, Run, present_rows, run_fault, shown_present, standard

SIGSTOP_SECONDS = 5
# daphne pings a silent socket after 20 s and drops it 30 s later; the room's
# heartbeats prune presence 45 s after the last one. Either way, within:
GONE_WITHIN_SECONDS = 90
BIG_NOTE = ("A slow client must not hold the room back. " * 90).strip()  # about 3,900 characters
MEMORY_GROWTH_LIMIT_KIB = 96 * 1024
SLOW_CLIENT_DROPPED_WITHIN = 120


def test_kill_9_a_daphne_mid_burst_and_start_it_again(deployment: Deployment, cast: Cast):
    async def scenario(run: Run):
        async def inject():
            deployment.a.kill()
            await asyncio.to_thread(deployment.a.start)

        return await standard(run, inject, browser_on=deployment.a.base_url)

    asyncio.run(run_fault(deployment, cast, "kill -9 daphne", scenario))


def test_sigstop_a_daphne_for_5_seconds(deployment: Deployment, cast: Cast):
    async def scenario(run: Run):
        async def inject():
            deployment.a.signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(SIGSTOP_SECONDS)  # the fault's own length
            finally:
                deployment.a.signal(signal.SIGCONT)

        return await standard(run, inject, browser_on=deployment.a.base_url)

    asyncio.run(run_fault(deployment, cast, "SIGSTOP 5 s", scenario))


def test_redis_connections_killed_then_redis_restarted(deployment: Deployment, cast: Cast):
    async def scenario(run: Run):
        async def inject():
            killed = await asyncio.to_thread(deployment.redis.kill_clients)
            run.result.notes.append(f"CLIENT KILL closed {killed} connections")
            await run.type_for(2)
            await asyncio.to_thread(deployment.redis.restart)

        return await standard(run, inject, browser_on=deployment.nginx.base_url)

    asyncio.run(run_fault(deployment, cast, "Redis kill+restart", scenario))


def test_postgres_connections_terminated_mid_write(deployment: Deployment, cast: Cast):
    async def scenario(run: Run):
        async def inject():
            terminated = 0
            # Again and again while notes are written, so that some die mid-transaction.
            for _ in range(8):
                terminated += await asyncio.to_thread(
                    deployment.postgres.terminate_app_connections, deployment.database
                )
                await asyncio.sleep(0.3)
            run.result.notes.append(f"pg_terminate_backend ended {terminated} connections")
            assert terminated, "no connection of the app was there to terminate"

        return await standard(run, inject, browser_on=deployment.nginx.base_url)

    asyncio.run(run_fault(deployment, cast, "PostgreSQL terminate", scenario))


def test_socket_cut_without_close_frame(deployment: Deployment, cast: Cast):
    """pat's network goes silent (no close frame, no FIN) while his laptop sleeps:
    the room shows him gone within a bounded time; when he is back, his client
    reconnects by itself and sends what it still held."""

    async def scenario(run: Run):
        d = run.deployment
        link = Link(d.nginx.port)
        await link.start()
        run.closing.append(link.close)  # after the check: pat's new connection runs through it
        run.client("sam", d.a.base_url)
        dana = run.client("dana", d.b.base_url)
        pat = run.client("pat", d.nginx.base_url, port=link.port)
        await run.open_browser(run.playwright, d.nginx.base_url)
        await run.all_connected()
        run.start_typing(["sam", "dana", "pat"])
        await run.type_for(2)
        started = time.monotonic()
        # Mid-burst: what pat sends from now on vanishes, and so does what he is sent.
        link.cut()
        await run.type_for(0.6)
        pat.freeze()
        await run.type_for(2)
        await run.finish_typing()

        def gone() -> bool:
            panel = dana.panels.get("live-room", "")
            return shown_present(panel).get("pat") is False

        deadline = started + GONE_WITHIN_SECONDS
        while not gone() and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        gone_after = time.monotonic() - started
        rows = await sync_to_async(present_rows)(run.session_id, "pat")
        run.result.notes.append(
            f"the room showed pat gone after {gone_after:.1f} s (presence rows left: {rows})"
        )
        assert gone(), f"pat still shown present {GONE_WITHIN_SECONDS} s after the cut"
        pat.thaw()
        return await run.until_converged(started)

    asyncio.run(run_fault(deployment, cast, "socket cut, no FIN", scenario))


def test_slow_client_that_does_not_read(deployment: Deployment, cast: Cast):
    """pat stops reading his socket while the others write big notes fast: their
    notes are acknowledged as quickly as before, daphne's memory stays bounded,
    and daphne drops pat's socket; when pat reads again he catches up."""

    async def scenario(run: Run):
        d = run.deployment
        sam = run.client("sam", d.a.base_url)
        dana = run.client("dana", d.b.base_url)
        erin = run.client("erin", d.nginx.base_url)
        pat = run.client("pat", d.a.base_url)
        await run.all_connected()
        before_kib = d.a.rss_kib()
        pat.stop_reading()
        started = time.monotonic()
        run.start_typing(
            ["sam", "dana", "erin"],
            browser=False,
            text=lambda name: f"{run.text(name)} {BIG_NOTE}",
        )
        peak_kib = before_kib
        while time.monotonic() - started < 10:
            peak_kib = max(peak_kib, d.a.rss_kib())
            await asyncio.sleep(0.25)
        await run.finish_typing()
        others = await run.until_converged(started, exclude=("pat",))
        slowest_ack = max(ack for c in (sam, dana, erin) for ack in c.ack_seconds)
        run.result.notes.append(
            f"daphne a: {before_kib // 1024} MiB before, {peak_kib // 1024} MiB at most; "
            f"slowest acknowledgement {slowest_ack:.2f} s; others whole after "
            f"{others and round(others, 1)} s"
        )
        views = [
            f"{v.name}: connected={v.connected} pending={v.pending} shows={len(v.notes)}"
            for v in await run.views(exclude=("pat",))
        ]
        assert others is not None, f"the others' notes did not all arrive: {views}"
        assert slowest_ack < 5, "the slow client held back the others' writes"
        assert peak_kib - before_kib < MEMORY_GROWTH_LIMIT_KIB

        # daphne drops the socket that answers no ping.
        deadline = started + SLOW_CLIENT_DROPPED_WITHIN
        while await sync_to_async(present_rows)(run.session_id, "pat"):
            assert time.monotonic() < deadline, "daphne never dropped the slow client"
            peak_kib = max(peak_kib, d.a.rss_kib())
            await asyncio.sleep(0.5)
        run.result.notes.append(f"daphne dropped pat after {time.monotonic() - started:.1f} s")
        pat.resume_reading()
        return await run.until_converged(started)

    asyncio.run(run_fault(deployment, cast, "slow client", scenario))


def test_sigterm_closes_sockets_with_1012_and_clients_come_back(deployment: Deployment, cast: Cast):
    async def scenario(run: Run):
        async def inject():
            await asyncio.to_thread(deployment.a.terminate)
            await asyncio.to_thread(deployment.a.start)

        recover = await standard(run, inject, browser_on=deployment.a.base_url)
        sam_codes = run.clients["sam"].close_codes
        browser_codes = (await run.browser.view()).close_codes
        run.result.notes.append(f"close codes seen: sam {sam_codes}, browser {browser_codes}")
        assert sam_codes[:1] == [1012], "daphne a's websocket client was not closed with 1012"
        assert browser_codes[:1] == [1012], "daphne a's browser was not closed with 1012"
        return recover

    asyncio.run(run_fault(deployment, cast, "SIGTERM deploy", scenario))
