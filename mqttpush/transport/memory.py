"""An in-memory broker and transport for fast unit tests (not a replacement for Mosquitto).

It routes by MQTT topic filters (``+``, ``#``) and keeps MQTT 5 properties, so the
same contract tests run against it and against a real broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from typing import TYPE_CHECKING

from mqttpush.errors import BrokerUnavailableError, ConnectionLostError
from mqttpush.transport.base import Message, Transport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["MemoryBroker", "MemoryTransport", "topic_matches"]

_ids = itertools.count(1)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Return whether ``topic`` matches the MQTT ``topic_filter``."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= len(topic_levels):
            return False
        if level not in ("+", topic_levels[i]):
            return False
    return len(filter_levels) == len(topic_levels)


class MemoryBroker:
    """Routes messages between :class:`MemoryTransport` instances in one event loop."""

    def __init__(self) -> None:
        self._subscriptions: dict[MemoryTransport, set[str]] = {}
        self.available = True

    def transport(self, client_id: str | None = None) -> MemoryTransport:
        """Return a new transport attached to this broker."""
        return MemoryTransport(self, client_id or f"memory-{next(_ids)}")

    def attach(self, transport: MemoryTransport) -> None:
        """Accept a connection."""
        if not self.available:
            raise BrokerUnavailableError("in-memory broker is not available")
        self._subscriptions[transport] = set()

    def detach(self, transport: MemoryTransport) -> None:
        """Forget a connection and its subscriptions."""
        self._subscriptions.pop(transport, None)

    def subscribe(self, transport: MemoryTransport, topic_filter: str) -> None:
        """Record a subscription."""
        self._subscriptions[transport].add(topic_filter)

    def route(self, message: Message) -> int:
        """Deliver to every subscriber once; return how many got it."""
        delivered = 0
        for transport, filters in list(self._subscriptions.items()):
            if any(topic_matches(f, message.topic) for f in filters):
                transport.deliver(message)
                delivered += 1
        return delivered

    def drop_all(self) -> None:
        """Break every connection, as a broker crash would."""
        for transport in list(self._subscriptions):
            transport.lose_connection()
        self._subscriptions.clear()


class MemoryTransport(Transport):
    """A transport whose broker is a :class:`MemoryBroker`."""

    def __init__(self, broker: MemoryBroker, client_id: str) -> None:
        self._broker = broker
        self._client_id = client_id
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._connected = False

    @property
    def client_id(self) -> str:
        """The client identifier."""
        return self._client_id

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
        return self._connected

    async def connect(self) -> None:
        """Attach to the broker."""
        self._broker.attach(self)
        self._queue = asyncio.Queue()
        self._connected = True

    async def disconnect(self) -> None:
        """Detach from the broker."""
        self._broker.detach(self)
        self.lose_connection()

    def lose_connection(self) -> None:
        """Drop the connection: ``messages()`` raises ConnectionLostError."""
        if self._connected:
            self._connected = False
            self._queue.put_nowait(None)

    def _require(self) -> None:
        if not self._connected:
            raise ConnectionLostError("not connected to the in-memory broker")

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe."""
        self._require()
        self._broker.subscribe(self, topic_filter)

    async def publish(self, message: Message) -> bool:
        """Publish to every matching subscriber; False when there was none."""
        self._require()
        return self._broker.route(message) > 0

    def deliver(self, message: Message) -> None:
        """Queue an inbound message (called by the broker)."""
        self._queue.put_nowait(dataclasses.replace(message, received_at=time.monotonic()))

    def buffered(self) -> int:
        """Messages delivered and not yet taken."""
        return self._queue.qsize()

    async def messages(self) -> AsyncIterator[Message]:
        """Yield inbound messages until the connection drops."""
        self._require()
        while (message := await self._queue.get()) is not None:
            yield message
        raise ConnectionLostError("connection to the in-memory broker lost")
