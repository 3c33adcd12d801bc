"""One broker connection kept up: reconnects, restores subscriptions, spots lost sessions.

Reconnection uses exponential backoff with full jitter, so many agents do not return in
lock-step after a broker restart. A fixed-id connection that the broker takes over
(another process with the same client id) stops for good instead of fighting for it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from mqttpush.errors import BrokerUnavailableError, ConnectionLostError, SessionTakenOverError
from mqttpush.observe import Metrics

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.settings import BrokerSettings
    from mqttpush.transport.base import Message, Transport

__all__ = ["Connection"]

log = logging.getLogger(__name__)
_TAKEOVER_WINDOW = 5.0  # a connection that lived less than this counts as a quick drop
_TAKEOVER_DROPS = 5


class Connection:
    """A transport kept connected, with the subscriptions to restore after a drop.

    Attributes:
        connected: Set while the connection is up.
        stopped: Set when the connection was given up for good (session taken over).
        stopped_because: Why it was given up.
        reconnects: How many times it came back.
        sessions_lost: Reconnects where the broker had not kept a persistent session.
    """

    def __init__(
        self, transport: Transport, settings: BrokerSettings, metrics: Metrics | None = None
    ) -> None:
        self.transport = transport
        self._metrics = metrics or Metrics()
        self._settings = settings
        self._filters: list[str] = []
        self.connected = asyncio.Event()
        self.stopped = asyncio.Event()
        self.stopped_because: SessionTakenOverError | None = None
        self.closing = False
        self.reconnects = 0
        self.sessions_lost = 0
        self._connected_at = time.monotonic()
        self._quick_drops = 0

    async def open(self) -> None:
        """Connect for the first time.

        Raises:
            BrokerUnavailableError: The broker cannot be reached.
        """
        await self.transport.connect()
        self._connected_at = time.monotonic()
        self.connected.set()

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe now and after every reconnect."""
        self._filters.append(topic_filter)
        await self.transport.subscribe(topic_filter, 1)

    async def run(
        self,
        dispatch: Callable[[Message], Awaitable[None]],
        on_lost: Callable[[ConnectionLostError], None],
    ) -> None:
        """Hand every inbound message to ``dispatch``, reconnecting whenever it drops.

        ``on_lost`` hears of each drop (pending calls fail or retry with it).
        """
        while not self.closing:
            try:
                async for message in self.transport.messages():
                    await dispatch(message)
            except SessionTakenOverError as exc:
                on_lost(exc)
                await self._stop(exc)
                return
            except ConnectionLostError as exc:
                self.connected.clear()
                log.warning("%s; reconnecting", exc)
                on_lost(exc)
                try:
                    self._note_drop()
                    await self._reconnect()
                except SessionTakenOverError as taken:
                    on_lost(taken)
                    await self._stop(taken)
                    return
                self.connected.set()

    async def _stop(self, exc: SessionTakenOverError) -> None:
        """Give up the connection for good: another client holds this client id."""
        self.connected.clear()
        await self.transport.disconnect()
        self.stopped_because = exc
        log.error("%s: this process stops using it (two copies of one agent?)", exc)
        self.stopped.set()

    def _note_drop(self) -> None:
        """Count a fixed-id connection that dropped right after connecting.

        Brokers before Mosquitto 2.0.15 close a taken-over session without reason
        code 142; five connections in a row that each lived under 5 s mean the same.

        Raises:
            SessionTakenOverError: That pattern.
        """
        if not self.transport.persistent:
            return
        if time.monotonic() - self._connected_at > _TAKEOVER_WINDOW:
            self._quick_drops = 0
            return
        self._quick_drops += 1
        if self._quick_drops >= _TAKEOVER_DROPS:
            raise SessionTakenOverError(
                f"the broker keeps closing client {self.transport.client_id!r} right after "
                "it connects: another process probably uses the same client id"
            )

    async def _reconnect(self) -> None:
        delay = self._settings.reconnect_min_delay
        while not self.closing:
            await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not cryptography
            try:
                await self.transport.connect()
                self._connected_at = time.monotonic()
                for topic_filter in self._filters:
                    await self.transport.subscribe(topic_filter, 1)
            except (BrokerUnavailableError, ConnectionLostError) as exc:
                log.warning("reconnect failed: %s", exc)
                if self.transport.is_connected:
                    self._note_drop()  # connected, then lost while restoring subscriptions
                await self.transport.disconnect()
                delay = min(delay * 2, self._settings.reconnect_max_delay)
                continue
            self.reconnects += 1
            lost = self.transport.persistent and not self.transport.session_present
            self._metrics.reconnected(session_lost=lost)
            log.warning("reconnected to the broker; %d subscriptions restored", len(self._filters))
            if lost:
                self.sessions_lost += 1
                log.warning(
                    "the broker did not resume this client's session (expired, or the broker "
                    "lost it): messages queued for %s while it was away may be lost",
                    self.transport.client_id,
                )
            return
