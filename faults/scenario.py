"""One fault run: a live room, members typing notes into it through both daphne
processes and nginx, the fault injected mid-stream, and then the check that the
database and every client agree, with nothing lost and nothing doubled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from faults.clients import BrowserClient, LiveClient, View
from faults.deployment import Deployment

PASSWORD = "fault-suite-password"
CONNECT_SECONDS = 60
# Generous: two cores, shared with whatever else runs.
RECOVER_SECONDS = 150
TYPING_INTERVAL = 0.3
BROWSER_TYPING_INTERVAL = 0.6
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # A background tab's timers are throttled; the page under test is not in the background.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]

RESULTS: list[Result] = []


# --- Who is in the room --------------------------------------------------------------------------


@dataclass
class Cast:
    """One team: dana (owner, facilitator), sam, erin, kim (in a browser), pat."""

    users: dict[str, Any]
    cookies: dict[str, str]

    NAMES = ("dana", "sam", "erin", "kim", "pat")

    @classmethod
    def create(cls) -> Cast:
        from django.contrib.auth import get_user_model
        from django.test import Client

        from sessions_app.models import Membership, Team

        team = Team.objects.create(name="Acme")
        users, cookies = {}, {}
        for name in cls.NAMES:
            user = get_user_model().objects.create_user(username=name, password=PASSWORD)
            role = Membership.Role.OWNER if name == "dana" else Membership.Role.MEMBER
            Membership.objects.create(team=team, user=user, role=role)
            client = Client()
            client.force_login(user)
            users[name] = user
            cookies[name] = f"sessionid={client.cookies['sessionid'].value}"
        return cls(users, cookies)

    def new_room(self, title: str):
        from django.utils import timezone

        from sessions_app.models import EnsembleSession, Feature, Participant

        dana = self.users["dana"]
        team = dana.memberships.get().team
        feature = Feature.objects.create(
            team=team, name=f"Feature for {title}", flag_key=re.sub(r"\W+", "-", title.lower())
        )
        session = EnsembleSession.objects.create(
            feature=feature,
            title=title,
            internal_tenant="acme-internal",
            facilitator=dana,
            status=EnsembleSession.Status.LIVE,
            started_at=timezone.now(),
        )
        for name, user in self.users.items():
            role = Participant.Role.DRIVER if name == "sam" else Participant.Role.OBSERVER
            Participant.objects.create(session=session, user=user, role=role)
        return session


def stored_notes(session_id) -> list[tuple[int, str, str]]:
    from sessions_app.models import Note

    return list(
        Note.objects.filter(session_id=session_id, deleted_at=None)
        .order_by("seq")
        .values_list("seq", "client_id", "text")
    )


def present_rows(session_id, username: str) -> int:
    from sessions_app.models import Presence

    return Presence.objects.filter(session_id=session_id, user__username=username).count()


_PERSON = re.compile(
    r'<li class="(?P<where>present|away)">.*?<span class="person">(?P<name>[^<]+)</span>',
    re.DOTALL,
)


def shown_present(room_html: str) -> dict[str, bool]:
    """Who the room panel lists, and whether it shows them as here."""
    return {m["name"].strip(): m["where"] == "present" for m in _PERSON.finditer(room_html)}


# --- The result of one fault ---------------------------------------------------------------------


@dataclass
class Result:
    fault: str
    typed: int = 0
    stored: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    recover_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    def cells(self) -> tuple[str, ...]:
        delivered = " ".join(f"{name}={count}" for name, count in self.delivered.items())
        recover = "never" if self.recover_seconds is None else f"{self.recover_seconds:.1f} s"
        return (
            self.fault,
            str(self.typed),
            str(self.stored),
            delivered,
            str(self.lost),
            str(self.duplicated),
            recover,
        )


# --- The run -------------------------------------------------------------------------------------


class Run:
    """A room and its members for one fault."""

    def __init__(self, deployment: Deployment, cast: Cast, fault: str):
        self.deployment, self.cast, self.fault = deployment, cast, fault
        self.result = Result(fault)
        self.clients: dict[str, LiveClient] = {}
        self.browser: BrowserClient | None = None
        self.session_id = None
        self.typing: list[asyncio.Task] = []
        self.stop_typing = asyncio.Event()
        self.counter = Counter()
        self.playwright = None
        self.closing: list = []  # what else to close once the run is checked

    # --- Members ---------------------------------------------------------------------------------

    def client(self, name: str, base_url: str, *, port: int | None = None) -> LiveClient:
        """A websocket member on `base_url` (a daphne or nginx), optionally through
        a relay listening on `port` in front of it."""
        host = f"127.0.0.1:{port}" if port else base_url.removeprefix("http://")
        client = LiveClient(
            name,
            f"ws://{host}/ws/sessions/{self.session_id}/",
            origin=base_url,
            cookie=self.cast.cookies[name],
        )
        self.clients[name] = client
        client.start()
        return client

    async def open_browser(self, playwright, base_url: str) -> BrowserClient:
        executable = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
        if not os.access(executable, os.X_OK):
            raise RuntimeError(
                f"No Chromium at {executable}: the fault suite needs a browser "
                "(Debian: apt-get install chromium; or set CHROMIUM)."
            )
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        self.browser = await BrowserClient.open(
            context,
            "kim",
            base_url,
            f"{base_url}/sessions/{self.session_id}/live/",
            PASSWORD,
        )
        return self.browser

    async def all_connected(self) -> None:
        await asyncio.gather(*(c.until_connected(CONNECT_SECONDS) for c in self.clients.values()))

    # --- Typing -------------------------------------------------------------------------------

    def text(self, name: str) -> str:
        self.counter[name] += 1
        return f"{self.fault} · {name} · note {self.counter[name]}"

    def start_typing(self, names: list[str], *, browser: bool = True, text=None) -> None:
        text = text or self.text

        async def py_typist(client: LiveClient) -> None:
            while not self.stop_typing.is_set():
                if client.awake.is_set():
                    client.type_note(text(client.name))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_typing.wait(), TYPING_INTERVAL)

        async def browser_typist(page: BrowserClient) -> None:
            while not self.stop_typing.is_set():
                await page.type_note(text(page.name))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_typing.wait(), BROWSER_TYPING_INTERVAL)

        self.typing += [asyncio.create_task(py_typist(self.clients[n])) for n in names]
        if browser and self.browser:
            self.typing.append(asyncio.create_task(browser_typist(self.browser)))

    async def type_for(self, seconds: float) -> None:
        """Typing goes on meanwhile (a fault is injected mid-stream)."""
        await asyncio.sleep(seconds)

    async def finish_typing(self) -> None:
        self.stop_typing.set()
        await asyncio.gather(*self.typing)

    # --- The truth, and what everyone shows -----------------------------------------------------

    def typed(self) -> list[str]:
        texts = [t for c in self.clients.values() for t in c.typed]
        if self.browser:
            texts += self.browser.typed
        return texts

    async def views(self, exclude: tuple[str, ...] = ()) -> list[View]:
        views = [c.view() for name, c in self.clients.items() if name not in exclude]
        if self.browser and "kim" not in exclude:
            views.append(await self.browser.view())
        return views

    async def converged(self, exclude: tuple[str, ...] = ()) -> bool:
        stored = await sync_to_async(stored_notes)(self.session_id)
        stored_texts = Counter(text for _, _, text in stored)
        if any(stored_texts[text] < 1 for text in self.typed()):
            return False
        expected = [(seq, text) for seq, _, text in stored]
        for view in await self.views(exclude):
            if not view.connected or view.pending:
                return False
            if [(n.seq, n.text) for n in view.notes] != expected:
                return False
        return True

    async def until_converged(self, since: float, exclude: tuple[str, ...] = ()) -> float | None:
        """Seconds from `since` until the room is whole again, or None by the deadline."""
        deadline = time.monotonic() + RECOVER_SECONDS
        while time.monotonic() < deadline:
            if await self.converged(exclude):
                return time.monotonic() - since
            await asyncio.sleep(0.25)
        return None

    async def check(self, recover_seconds: float | None) -> Result:
        """Fills in the table's row, then asserts what the row must say."""
        result = self.result
        result.recover_seconds = recover_seconds
        stored = await sync_to_async(stored_notes)(self.session_id)
        typed = self.typed()
        stored_texts = Counter(text for _, _, text in stored)
        views = await self.views()
        result.typed, result.stored = len(typed), len(stored)
        lost = [t for t in typed if stored_texts[t] == 0]
        doubled = [t for t, n in stored_texts.items() if n > 1]
        strangers = [t for t in stored_texts if t not in set(typed)]
        stored_pairs = [(seq, text) for seq, _, text in stored]
        problems = []
        if lost:
            problems.append(f"typed but not stored: {lost[:5]}")
        if doubled:
            problems.append(f"stored more than once: {doubled[:5]}")
        if strangers:
            problems.append(f"stored but never typed: {strangers[:5]}")
        if [seq for seq, _ in stored_pairs] != list(range(1, len(stored) + 1)):
            problems.append("seqs are not 1..n without gaps")
        missing_total, doubled_total = 0, 0
        for view in views:
            shown = [(n.seq, n.text) for n in view.notes]
            counts = Counter(shown)
            result.delivered[view.name] = sum(1 for pair in set(shown) if pair in stored_pairs)
            missing = [pair for pair in stored_pairs if pair not in counts]
            extra = sum(n - 1 for n in counts.values() if n > 1)
            missing_total += len(missing)
            doubled_total += extra
            if missing:
                problems.append(f"{view.name} misses {len(missing)} notes: {missing[:3]}")
            if extra:
                problems.append(f"{view.name} shows {extra} notes twice")
            if shown != sorted(shown) or set(shown) - set(stored_pairs):
                problems.append(f"{view.name} shows notes out of order or unknown")
            if not view.connected:
                problems.append(f"{view.name} is not connected (closes seen: {view.close_codes})")
            if view.pending:
                problems.append(f"{view.name} still has {view.pending} notes waiting")
            if view.reloaded:
                problems.append(f"{view.name} reloaded its page")
        for client in self.clients.values():
            if client.drops and problems:
                problems.append(f"{client.name}'s connections ended: {client.drops}")
            if client.refused:
                problems.append(f"{client.name}'s notes were refused: {client.refused[:2]}")
        result.lost = len(lost) + missing_total
        result.duplicated = sum(stored_texts[t] - 1 for t in doubled) + doubled_total
        if recover_seconds is None:
            problems.append(f"the room was not whole again within {RECOVER_SECONDS} s")
        if problems:
            problems += [
                f"{v.name}: connected={v.connected} pending={v.pending} shows={len(v.notes)} "
                f"closes={v.close_codes}"
                for v in views
            ]
        RESULTS.append(result)
        assert not problems, "\n".join(problems)
        return result

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        for close in self.closing:
            await close()
        if self.browser:
            with contextlib.suppress(Exception):
                await self.browser.page.context.browser.close()


async def run_fault(
    deployment: Deployment,
    cast: Cast,
    fault: str,
    scenario: Callable[[Run], Awaitable[float | None]],
) -> Result:
    """Sets up the room and runs `scenario`, which returns the recovery time."""
    from playwright.async_api import async_playwright

    run = Run(deployment, cast, fault)
    run.session_id = (await sync_to_async(cast.new_room)(fault)).pk
    try:
        async with async_playwright() as playwright:
            try:
                run.playwright = playwright
                recover = await scenario(run)
                return await run.check(recover)
            finally:
                await run.close()
    except BaseException:
        print(deployment.logs())
        raise


async def standard(
    run: Run,
    inject: Callable[[], Awaitable[Any]],
    *,
    browser_on: str,
    before: float = 2.0,
    after: float = 3.0,
) -> float | None:
    """sam on daphne a, dana on daphne b, erin through nginx, kim's browser on
    `browser_on`; all type; the fault comes mid-stream; typing goes on for
    `after` seconds past it; then the room must become whole by itself."""
    d = run.deployment
    run.client("sam", d.a.base_url)
    run.client("dana", d.b.base_url)
    run.client("erin", d.nginx.base_url)
    await run.open_browser(run.playwright, browser_on)
    await run.all_connected()
    run.start_typing(["sam", "dana", "erin"])
    await run.type_for(before)
    started = time.monotonic()
    await inject()
    await run.type_for(after)
    await run.finish_typing()
    return await run.until_converged(started)
