"""A TCP proxy in front of the broker that can drop every connection and refuse new ones: a real
network outage for the worker, without restarting the broker (the bundled broker keeps its data
in memory only, so restarting it is not an outage but a wipe). It can also hold back requests of
chosen Kafka APIs (a broker that stalls mid-call). A fault injector, named so."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from pathlib import Path


def proxy_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range, for a proxy that is down at times. While
    nothing listens on a local port in that range, a client retrying its connect can get that very
    port as its source and connect to itself (TCP's simultaneous open), and then holds it: the
    proxy's ``up`` failed with 'address already in use' in CI (2026-12-07). A host whose range
    starts at 1024 or lower leaves no such port: then any free port, as before."""
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ranges.read_text().split()[0]) if ranges.exists() else 32768
    below = range(max(1024, low - 10000), low)
    if not below:
        with socket.socket() as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    for port in random.sample(below, min(200, len(below))):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


class OutageProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stalled: frozenset[int] = frozenset()
        self._released: asyncio.Event | None = None  # made on the proxy's loop
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def up(self) -> None:
        """Accept and forward connections."""
        self._call(self._up())

    def down(self) -> None:
        """Close every open connection and stop listening (clients get 'connection refused')."""
        self._call(self._down())

    def stall(self, api_keys: set[int]) -> None:
        """Hold back every request of these Kafka API keys (1 = Fetch), and whatever the same
        connection sends after one, until ``release``: the broker seems to take forever."""
        self._call(self._set_stall(frozenset(api_keys)))

    def release(self) -> None:
        self._call(self._set_stall(frozenset()))

    async def _set_stall(self, api_keys: frozenset[int]) -> None:
        if self._released is None:
            self._released = asyncio.Event()
        self._stalled = api_keys
        if api_keys:
            self._released.clear()
        else:
            self._released.set()

    async def _up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, self.host, self.listen_port, reuse_address=True)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, broker_w}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()
                self._writers.discard(writer)

        async def requests(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Kafka frames: a 4-byte size, then the request header, whose first field is the API key.
            try:
                while True:
                    head = await reader.readexactly(4)
                    frame = head + await reader.readexactly(int.from_bytes(head, "big"))
                    while int.from_bytes(frame[4:6], "big", signed=True) in self._stalled and self._released:
                        await self._released.wait()
                    writer.write(frame)
                    await writer.drain()
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.transport.abort()
                self._writers.discard(writer)

        await asyncio.gather(requests(client_r, broker_w), pipe(broker_r, client_w))

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
