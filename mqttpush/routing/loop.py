"""The message loop: each inbound message is handled, then acknowledged (PUBACK).

QoS 1 messages are acknowledged to the broker only once they have been handled, so a
message whose handler never finished (the process stopped) is delivered again. A
handler that fails is logged and counted, and its message acknowledged all the same:
one bug must never stall the connection at the broker's Receive Maximum.

Inbound lanes: the broker delivers one stream, in which a request may come behind
hundreds of receipts or notifications. Of the messages the transport has already read,
requests and replies (:attr:`Lane.CONTROL`) are handled at once; receipts and
notifications wait in their lanes until nothing more is buffered (or
:data:`READ_AHEAD` of them wait), then go lane by lane, receipts first, each lane in the
order its messages came. The transport sends the PUBACKs in the order the messages came
all the same, as MQTT 5 requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from mqttpush.errors import FabricClosedError, MqttPushError
from mqttpush.observe import Metrics
from mqttpush.routing.router import Lane, Router

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Coroutine

    from mqttpush.routing.router import Route
    from mqttpush.transport.base import Message, Transport

__all__ = ["READ_AHEAD", "MessageLoop", "acknowledged", "settle"]

log = logging.getLogger(__name__)
READ_AHEAD = 256  # receipts and notifications read ahead of their handling, at most


async def settle(transport: Transport, message: Message) -> None:
    """Acknowledge ``message`` (PUBACK); when the connection is gone, the broker redelivers."""
    try:
        await transport.ack(message)
    except MqttPushError as exc:
        log.debug("acknowledgement of %s not sent: %s", message.topic, exc)


async def acknowledged(transport: Transport) -> AsyncGenerator[Message]:
    """Yield the messages of ``transport``, each acknowledged once the loop body is done.

    A message is acknowledged when the consumer asks for the next one, or leaves the
    loop (``break``, an exception, or closing the iterator), so a simple consumer
    acknowledges everything it has read and never stalls its connection::

        async with contextlib.aclosing(acknowledged(transport)) as messages:
            async for message in messages:
                print(message.topic)
    """
    async for message in transport.messages():
        try:
            yield message
        finally:
            await settle(transport, message)


class MessageLoop:
    """Routes every inbound message of one connection, and acknowledges it once handled.

    Args:
        transport: The connection the messages come from (and are acknowledged on).
        spawn: Runs a coroutine as a named task (for concurrent routes).
        hold_seconds: How long a message without a route waits for one.
        metrics: Where held and dropped messages are counted.
    """

    def __init__(
        self,
        transport: Transport,
        spawn: Callable[..., asyncio.Task[Any]],
        *,
        hold_seconds: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._transport = transport
        self._metrics = metrics or Metrics()
        self._spawn = spawn
        self.router = Router(self._expired, hold_seconds=hold_seconds)
        self.unrouted = 0
        self.failures = 0
        self._lanes: tuple[deque[tuple[Route, Message]], ...] = tuple(
            deque() for _ in Lane if _ is not Lane.CONTROL
        )
        self._waiting = 0  # messages in the lanes
        # Messages of concurrent routes, taken in order by worker tasks (see _work).
        self._queued: deque[tuple[Route, Message]] = deque()
        self._starter: asyncio.Task[Any] | None = None  # a worker that has not started yet
        self._check_due = False

    async def dispatch(self, message: Message) -> None:
        """Route one message: requests and replies at once, others once nothing is buffered.

        A message with no route yet is held.
        """
        now = self._route(message)
        if now is not None:
            await now
        if self._waiting and (self._waiting >= READ_AHEAD or not self._transport.buffered()):
            await self.flush()

    def _route(self, message: Message) -> Coroutine[Any, Any, None] | None:
        """Put a receipt or notification in its lane; for others, what handles them now."""
        try:
            route = self.router.find(message.topic)
            if route is None and self.router.hold(message):
                self._metrics.message_held()
                return None  # acknowledged once handled after all, or dropped
        except Exception:  # a bug in routing one message must not stop the rest
            self.failures += 1
            log.exception("routing a message on %s failed", message.topic)
            return settle(self._transport, message)
        if route is not None and route.lane is Lane.CONTROL and not route.concurrent:
            return self._handle(route, message)  # requests and replies: no stop at _run
        if route is None or route.lane is Lane.CONTROL:
            return self._run(route, message)
        self._lanes[route.lane - 1].append((route, message))
        self._waiting += 1
        return None

    async def flush(self) -> None:
        """Handle the messages waiting in the lanes, receipts before notifications."""
        for lane in self._lanes:
            while lane:
                route, message = lane.popleft()
                self._waiting -= 1
                if route.concurrent:
                    self._enqueue(route, message)
                else:
                    await self._handle(route, message)

    def replay(self) -> None:
        """Route the held messages again (a route was just added)."""
        for message in self.router.release():
            route = self.router.find(message.topic)
            with contextlib.suppress(FabricClosedError):  # closing: the broker redelivers
                self._spawn(self._run(route, message), name="mqttpush-replay")

    async def _run(self, route: Route | None, message: Message) -> None:
        if route is None:
            self._drop(message)
            await settle(self._transport, message)
        elif route.concurrent:
            self._enqueue(route, message)
        else:
            await self._handle(route, message)

    def _enqueue(self, route: Route, message: Message) -> None:
        """Queue a message of a concurrent route for the workers; start one if none is due."""
        self._queued.append((route, message))
        if self._starter is None or self._starter.done():
            self._start_worker()

    def _start_worker(self) -> None:
        with contextlib.suppress(FabricClosedError):  # closing: the broker redelivers
            self._starter = self._spawn(self._work(), name="mqttpush-handle")

    async def _work(self) -> None:
        """Handle queued messages of concurrent routes in turn, until none is left.

        One task takes every message whose handler does not wait; when a handler does
        wait (the task yields to the loop with messages still queued), another worker
        starts on the next, so a slow handler never holds up the others.
        """
        self._starter = None
        queued = self._queued
        try:
            while queued:
                route, message = queued.popleft()
                if queued and not self._check_due:
                    self._check_soon()
                await self._handle(route, message)
        finally:
            if queued:  # cancelled: any others are for another worker
                self._check_soon()

    def _check_soon(self) -> None:
        if not self._check_due:
            self._check_due = True
            asyncio.get_running_loop().call_soon(self._check)

    def _check(self) -> None:
        """Start another worker if messages wait while every worker waits in a handler."""
        self._check_due = False
        if self._queued and (self._starter is None or self._starter.done()):
            self._start_worker()

    async def _handle(self, route: Route, message: Message) -> None:
        try:
            await route.handle(message)
        except asyncio.CancelledError:
            raise  # shutting down before handling finished: no PUBACK, so it comes again
        except Exception:
            self.failures += 1
            log.exception("handling a message on %s failed", message.topic)
        await settle(self._transport, message)

    def _drop(self, message: Message) -> None:
        self.unrouted += 1
        self._metrics.message_dropped("no_agent")
        log.warning("no agent is served for %s here: message dropped", message.topic)

    def _expired(self, message: Message) -> None:
        self._drop(message)
        with contextlib.suppress(FabricClosedError):  # closing: the broker keeps it
            self._spawn(settle(self._transport, message), name="mqttpush-puback")
