"""One broker connection kept up: reconnects, restores subscriptions, spots lost sessions.

Reconnection waits with exponential backoff and jitter (a random wait between half and
all of the current delay), so many agents do not return in lock-step after a broker
restart. The delay grows with every failed or short-lived connection and goes back to
the minimum only once a connection stayed up for :data:`STABLE_AFTER` seconds, so a
broker that accepts and then drops a client at once does not get a reconnect storm. A
broker that asks clients to come back later (server busy, quota or connection rate
exceeded, use another server or moved) gets the longest wait at once.

With several broker nodes (``broker.servers``: nodes of one cluster), the first connection
goes to the first node that answers, and every reconnect attempt to the next node in
turn, so a dead node costs one attempt. A broker whose DISCONNECT or CONNACK names a
Server Reference is followed there on the next attempt, after the shortest wait.

A fixed-id connection that the broker takes over (another process with the same client
id) stops for good instead of fighting for it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from mqttpush.errors import (
    BrokerUnavailableError,
    ConnectionLostError,
    SessionTakenOverError,
    TransportError,
)
from mqttpush.observe import Metrics
from mqttpush.servers import parse_server
from mqttpush.transport.reasons import BACK_OFF, SESSION_TAKEN_OVER

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.servers import Server
    from mqttpush.settings import BrokerSettings
    from mqttpush.transport.base import Message, Transport

__all__ = ["STABLE_AFTER", "Connection"]

log = logging.getLogger(__name__)
STABLE_AFTER = 10.0  # seconds a connection must stay up before the backoff starts over
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
        self._delay = settings.reconnect_min_delay
        self._servers = settings.server_list()
        self._current = 0
        self._referred: Server | None = None
        self.server: Server = self._servers[0]

    async def open(self) -> None:
        """Connect for the first time, to the first broker node that answers.

        Raises:
            BrokerUnavailableError: No node can be reached (the last node's error).
        """
        for index, server in enumerate(self._servers):
            self._go_to(server)
            try:
                await self.transport.connect()
            except BrokerUnavailableError as exc:
                if index == len(self._servers) - 1:
                    raise
                log.warning("broker %s: %s; trying the next one", server, exc)
                continue
            self._current = index
            break
        self._connected_at = time.monotonic()
        self.connected.set()

    def _go_to(self, server: Server) -> None:
        self.server = server
        self.transport.use(server)

    def _next_server(self) -> Server:
        """The node of the next attempt: the one a broker referred to, else the next in turn."""
        if self._referred is not None:
            server, self._referred = self._referred, None
            return server
        self._current = (self._current + 1) % len(self._servers)
        return self._servers[self._current]

    def _follow(self, exc: TransportError) -> bool:
        """Take the broker's Server Reference (its first entry) as the next node, if usable."""
        reference = (exc.server_reference or "").split()
        if not reference:
            return False
        try:
            self._referred = parse_server(reference[0], default_port=self.server.port)
        except ValueError:
            log.warning("ignoring the broker's server reference %r", exc.server_reference)
            return False
        log.warning("the broker refers this client to %s", self._referred)
        return True

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe now and after every reconnect."""
        self._filters.append(topic_filter)
        await self.transport.subscribe(topic_filter, 1)

    async def run(
        self,
        dispatch: Callable[[Message], Awaitable[None]],
        on_lost: Callable[[ConnectionLostError], None],
        flush: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Hand every inbound message to ``dispatch``, reconnecting whenever it drops.

        ``on_lost`` hears of each drop (pending calls fail or retry with it); ``flush``
        is awaited first, to handle what ``dispatch`` kept for later.
        """
        while not self.closing:
            try:
                async for message in self.transport.messages():
                    await dispatch(message)
            except SessionTakenOverError as exc:
                if flush is not None:
                    await flush()
                on_lost(exc)
                await self._stop(exc)
                return
            except ConnectionLostError as exc:
                self.connected.clear()
                if flush is not None:
                    await flush()
                log.warning("%s; reconnecting", exc)
                on_lost(exc)
                try:
                    self._note_drop(exc)
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

    def _note_drop(self, exc: TransportError) -> None:
        """Adjust the backoff to a drop, and count a fixed-id connection dropped at once.

        Brokers before Mosquitto 2.0.15 close a taken-over session without reason
        code 142; five connections in a row that each lived under 5 s, closed without a
        reason code, mean the same. A drop with another reason code (server busy,
        shutting down, ...) is the broker's own doing and never counts.

        Raises:
            SessionTakenOverError: That pattern.
        """
        lived = time.monotonic() - self._connected_at
        settings = self._settings
        if lived >= STABLE_AFTER:
            self._delay = settings.reconnect_min_delay
        if self._follow(exc):
            self._delay = settings.reconnect_min_delay  # another node is ready now
        elif exc.reason_code in BACK_OFF or exc.server_reference is not None:
            self._delay = settings.reconnect_max_delay  # the broker asked for time
        if not self.transport.persistent:
            return
        if lived > _TAKEOVER_WINDOW:
            self._quick_drops = 0
            return
        if exc.reason_code not in (None, SESSION_TAKEN_OVER):
            return
        self._quick_drops += 1
        if self._quick_drops >= _TAKEOVER_DROPS:
            raise SessionTakenOverError(
                f"the broker keeps closing client {self.transport.client_id!r} right after "
                "it connects: another process probably uses the same client id"
            )

    def _wait(self) -> float:
        """The next wait before connecting, and the delay doubled for the one after."""
        delay = self._delay
        self._delay = min(delay * 2, self._settings.reconnect_max_delay)
        return random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not cryptography

    async def _reconnect(self) -> None:
        failures = 0
        while not self.closing:
            await asyncio.sleep(self._wait())
            self._go_to(self._next_server())
            try:
                await self.transport.connect()
                self._connected_at = time.monotonic()
                for topic_filter in self._filters:
                    await self.transport.subscribe(topic_filter, 1)
            except (BrokerUnavailableError, ConnectionLostError) as exc:
                failures += 1
                # The first failure of an outage is a warning; the rest would repeat it.
                log.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "reconnect failed (retrying quietly): %s",
                    exc,
                )
                if self.transport.is_connected:
                    self._note_drop(exc)  # connected, then lost while restoring subscriptions
                elif self._follow(exc):
                    self._delay = self._settings.reconnect_min_delay
                elif exc.reason_code in BACK_OFF or exc.server_reference is not None:
                    self._delay = self._settings.reconnect_max_delay
                await self.transport.disconnect()
                continue
            self.reconnects += 1
            lost = self.transport.persistent and not self.transport.session_present
            self._metrics.reconnected(session_lost=lost)
            log.warning(
                "reconnected to the broker at %s after %d failed attempts; "
                "%d subscriptions restored",
                self.server,
                failures,
                len(self._filters),
            )
            if lost:
                self.sessions_lost += 1
                log.warning(
                    "the broker did not resume this client's session (expired, or the broker "
                    "lost it): messages queued for %s while it was away may be lost",
                    self.transport.client_id,
                )
            return
