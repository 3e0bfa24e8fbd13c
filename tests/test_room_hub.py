"""The room hub (sessions_app/room_hub.py): a process subscribes once per room
to the channel layer, whatever the number of its connections there, and hands
each broadcast to them itself."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from sessions_app.room_access import FORBIDDEN, UNAUTHENTICATED
from sessions_app.room_hub import LAYER_LOST, RoomHub, hub_for
from sessions_app.services.timeline import group_name
from tests.live_room import (
    Sockets,
    make_room,
    new_client_id,
    next_message,
    note_message,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_room_is_one_subscription_however_many_connect():
    room = await database_sync_to_async(make_room)()
    sockets = Sockets()
    people = [room.dana, room.sam, room.erin]
    connected = [await sockets.connect(room, person) for person in people]
    hub = hub_for(get_channel_layer())
    group = group_name(room.session_id)
    assert len(hub.rooms[group]) == 3
    layer = get_channel_layer()
    if hasattr(layer, "groups"):  # the in-memory layer shows its groups
        assert set(layer.groups[group]) == {hub.channel}

    # Each connection still gets the note once (the author, its ack too).
    message = note_message("Export spins forever", client_id=new_client_id())
    await connected[1].send_json_to(message)
    for ws in connected:
        assert (await next_message(ws))["type"] in {"note", "ack"}
    for ws in (connected[0], connected[2]):
        await ws.send_json_to({"type": "ping"})
        assert (await next_message(ws))["type"] == "pong"  # no second copy first

    await sockets.close_all()
    assert group not in hub.rooms
    if hasattr(layer, "groups"):  # the room's group is left
        assert hub.channel not in layer.groups.get(group, {})


class LostLayer:
    """A channel layer whose connection is gone (Redis stopped) once joined."""

    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []
        self.gone = asyncio.Event()  # set when the test stops "Redis"

    async def new_channel(self) -> str:
        return f"hub!{len(self.added)}"

    async def group_add(self, group: str, channel: str) -> None:
        self.added.append((group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        pass

    async def receive(self, channel: str) -> dict:
        await self.gone.wait()
        raise ConnectionError("Connection closed by server.")


class Connection:
    def __init__(self) -> None:
        self.closed = asyncio.get_running_loop().create_future()

    async def room_broadcast(self, message: dict) -> None:
        raise AssertionError("nothing to broadcast")

    async def close(self, code: int | None = None) -> None:
        self.closed.set_result(code)


async def test_a_lost_layer_closes_the_rooms_connections_so_they_reconnect():
    layer = LostLayer()
    hub = RoomHub(layer)
    members = [Connection(), Connection()]
    for member in members:
        await hub.join("session-1", member)
    layer.gone.set()
    codes = await asyncio.wait_for(asyncio.gather(*(m.closed for m in members)), 10)
    # Not a refusal: the client reconnects, which subscribes it again.
    assert codes == [LAYER_LOST, LAYER_LOST]
    assert LAYER_LOST not in {UNAUTHENTICATED, FORBIDDEN}
    assert hub.rooms == {}
    # The next connection to arrive subscribes the process anew.
    layer.gone.clear()
    await hub.join("session-1", Connection())
    assert layer.added[-1] == ("session-1", "hub!2")
    hub.listener.cancel()
