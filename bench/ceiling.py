"""The practical Python ceiling: a plain `websockets` server that broadcasts
each text to every connection on the same path. One process, no framework.

Run as `python -m bench.ceiling <fd>` on an inherited listening socket.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOMS: dict[str, set[ServerConnection]] = defaultdict(set)


async def relay(connection: ServerConnection) -> None:
    room = ROOMS[connection.request.path]
    room.add(connection)
    try:
        async for message in connection:
            broadcast(room, message)
    finally:
        room.discard(connection)


async def serve_forever(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    async with serve(relay, sock=sock, max_queue=None, compression=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve_forever(int(sys.argv[1])))
