"""The live room's websocket. Thin: authenticate, authorize, then hand over to services."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from sessions_app.models import EnsembleSession

# Close codes the client must not reconnect after.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


@database_sync_to_async
def _is_member(user, session_id) -> bool:
    return EnsembleSession.objects.for_member(user).filter(pk=session_id).exists()


class SessionConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope["user"]
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        # A refusal is accepted and then closed with its code: closing before
        # accepting makes daphne answer the handshake with HTTP 403, which a
        # browser only sees as 1006, and the client would retry forever.
        if not user.is_authenticated:
            await self.accept()
            await self.close(code=UNAUTHENTICATED)
            return
        # Another team's session looks exactly like one that does not exist.
        if not await _is_member(user, session_id):
            await self.accept()
            await self.close(code=FORBIDDEN)
            return
        self.session_id = session_id
        self.group = f"session-{session_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
