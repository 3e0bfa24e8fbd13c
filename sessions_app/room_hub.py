"""One channel-layer subscription per process and room, not per connection.

A room's broadcast used to reach each of its connections through the channel
layer: one message per recipient, queued, picked up by the connection's own
task and dispatched. With 50 people in a room that is 50 layer messages per
note (50 Redis list pushes across processes). Instead each process subscribes
one channel of its own to the groups of the rooms it holds connections of,
and hands each broadcast to those connections itself: one layer message per
process per note, whatever the size of the room.

It is also the process's only receiver on the layer: connections have no
channel of their own (consumers.py). channels-redis loses a message when a
receive is cancelled just as Redis hands it over, and a consumer's receive is
cancelled whenever its connection closes: with one receiver per connection, a
person leaving could cost the others of the process a broadcast. So the hub's
listener, once started, is never cancelled; a room left empty only leaves its
group.

The hub belongs to an event loop and a channel layer (tests run many loops).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# The layer failed under the hub (Redis went away): its rooms' connections are
# closed with this code and reconnect, which subscribes them again and replays
# what they missed. A reconnecting close: autobahn only lets an application
# close with 1000 or 3000–4999, and the client reconnects after any close but
# a refusal (4401, 4403).
LAYER_LOST = 4503


class Member(Protocol):
    async def room_broadcast(self, message: dict[str, Any]) -> None: ...

    async def close(self, code: int | None = None) -> None: ...


class RoomHub:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.rooms: dict[str, set[Member]] = {}
        # Joins and leaves change the layer's groups one at a time, so a room's
        # last leave and its next join cannot cross (discard after add).
        self.lock = asyncio.Lock()
        self.channel: str | None = None
        self.listener: asyncio.Task | None = None

    async def join(self, group: str, member: Member) -> None:
        async with self.lock:
            if self.listener is None or self.listener.done():
                self.channel = await self.layer.new_channel()
                self.listener = asyncio.create_task(self._listen(self.channel))
            self.rooms.setdefault(group, set()).add(member)
            # At every join, not only the room's first: it renews the group's
            # expiry in Redis, and puts the hub back after a Redis restart.
            await self.layer.group_add(group, self.channel)

    async def leave(self, group: str, member: Member) -> None:
        async with self.lock:
            members = self.rooms.get(group)
            if members is None or member not in members:
                return
            members.discard(member)
            if not members:
                del self.rooms[group]
                await self.layer.group_discard(group, self.channel)

    async def _listen(self, channel: str) -> None:
        try:
            while True:
                message = await self.layer.receive(channel)
                await self._deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("The room hub lost its channel layer; its rooms reconnect.")
            await self._close_all()

    async def _deliver(self, message: dict[str, Any]) -> None:
        # A copy: a recipient's send may let another connection join or leave.
        for member in tuple(self.rooms.get(message.get("group", ""), ())):
            try:
                await member.room_broadcast(message)
            except Exception:
                # One connection's failure is not the room's.
                logger.exception("A room broadcast could not be handed to a connection.")

    async def _close_all(self) -> None:
        rooms, self.rooms = self.rooms, {}
        for members in rooms.values():
            for member in members:
                try:
                    await member.close(code=LAYER_LOST)
                except Exception:
                    logger.exception("A connection could not be closed.")


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, RoomHub]] = (
    weakref.WeakKeyDictionary()
)


def hub_for(layer) -> RoomHub:
    """This event loop's hub on `layer`."""
    by_layer = _hubs.setdefault(asyncio.get_running_loop(), {})
    hub = by_layer.get(id(layer))
    if hub is None or hub.layer is not layer:
        hub = by_layer[id(layer)] = RoomHub(layer)
    return hub
