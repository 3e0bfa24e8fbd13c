"""The floor of the stack: a Channels consumer that only relays each text to
its room's group. No database, no rendering, no validation: what the same
daphne processes and channel layer cost with nothing of Ensemble's own on top.

config/asgi.py routes it only when ENSEMBLE_BENCH_FLOOR=1, which the benchmark
sets for the servers it starts; it is never reachable in a deployment.
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path


class FloorConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"bench-floor-{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Without the stale-connection cleanup Channels runs before each handler
        # (a worker-thread trip): with no database there is nothing to clean.
        await getattr(self, get_handler_name(message))(message)

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        await self.channel_layer.group_send(self.group, {"type": "relay", "text": text_data})

    async def relay(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


websocket_urlpatterns = [path("ws/bench/floor/<slug:room>/", FloorConsumer.as_asgi())]
