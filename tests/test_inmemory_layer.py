"""The single-process channel layer sweeps expired messages once a second, not
on every receive, and still delivers a group send to every member."""

from __future__ import annotations

import pytest
from channels.layers import InMemoryChannelLayer

from config import inmemory_layer
from config.inmemory_layer import SweepingInMemoryChannelLayer


@pytest.fixture
def clock(monkeypatch):
    """Both clocks the layer reads (its sweep's, and the base class's expiry)."""
    now = [1_000.0]
    monkeypatch.setattr(inmemory_layer.time, "monotonic", lambda: now[0])
    monkeypatch.setattr("channels.layers.time.time", lambda: now[0])
    return now


async def test_a_group_send_reaches_every_member_once():
    layer = SweepingInMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(5)]
    for channel in channels:
        await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "room.broadcast", "text": "hello"})
    assert [(await layer.receive(channel))["text"] for channel in channels] == ["hello"] * 5
    assert all(layer.channels.get(channel) is None for channel in channels), "nothing left"


async def test_a_full_channel_misses_the_message_and_the_others_still_get_it():
    layer = SweepingInMemoryChannelLayer(capacity=1)
    full, other = await layer.new_channel(), await layer.new_channel()
    for channel in (full, other):
        await layer.group_add("room", channel)
    await layer.send(full, {"type": "first"})
    await layer.group_send("room", {"type": "second"})
    assert (await layer.receive(other))["type"] == "second"
    assert (await layer.receive(full))["type"] == "first"
    assert layer.channels.get(full) is None


async def test_expired_messages_are_swept_at_most_once_a_second(clock, monkeypatch):
    sweeps = []
    base_sweep = InMemoryChannelLayer._clean_expired
    monkeypatch.setattr(
        InMemoryChannelLayer, "_clean_expired", lambda self: sweeps.append(1) or base_sweep(self)
    )
    layer = SweepingInMemoryChannelLayer(expiry=60)
    gone, listener = await layer.new_channel(), await layer.new_channel()
    for channel in (gone, listener):
        await layer.group_add("room", channel)
    # A consumer that died without leaving its group: its message waits unread.
    await layer.send(gone, {"type": "unread"})

    for _ in range(50):
        await layer.group_send("room", {"type": "busy"})
        assert (await layer.receive(listener))["type"] == "busy"
    assert len(sweeps) == 1, "one sweep for fifty sends and receives within the second"

    clock[0] += 61  # past the unread message's expiry, and past the next sweep
    await layer.group_send("room", {"type": "later"})
    assert len(sweeps) == 2
    # As Channels does: a channel whose message expired leaves every group.
    assert gone not in layer.groups["room"]
    assert listener in layer.groups["room"]


async def test_flush_empties_the_layer():
    layer = SweepingInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.send(channel, {"type": "x"})
    await layer.flush()
    assert layer.channels == {} and layer.groups == {}
