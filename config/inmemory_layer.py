"""The single-process channel layer, fit for a busy room.

Channels' InMemoryChannelLayer sweeps every channel and every group for
expired messages on each receive and each group send, so with a few hundred
connections the sweeps cost more than the messages (a tenth of a busy
process's time, under the benchmark's fan-out). Here the sweep runs at most
once a second: expiry is counted in tens of seconds, so nothing expires
noticeably later. A group send also puts each copy straight on its queue
instead of starting a task per recipient.
"""

from __future__ import annotations

import contextlib
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

SWEEP_SECONDS = 1.0


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self.last_sweep >= SWEEP_SECONDS:
            self.last_sweep = now
            super()._clean_expired()

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            # As the base class: a full channel misses this message (the live
            # room's client notices the gap and replays it).
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)

    async def flush(self) -> None:
        await super().flush()
        self.last_sweep = 0.0
