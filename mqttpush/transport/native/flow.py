"""Writing through one broker connection, and waiting on it: the base of its protocol.

:class:`Flow` is the half of :class:`~mqttpush.transport.native.link.Link` that the
transport's calls go through: writes, back-pressure, packet ids, room under the broker's
Receive Maximum, and the inbox of received messages.

Choices that are not obvious:

- The inbox is bounded in messages and in bytes: past either bound the socket stops
  being read (``pause_reading``), so the kernel's buffer fills and TCP slows the broker
  down, QoS 0 floods included; reading resumes once the inbox has drained to half.

- The writes of one loop iteration are joined into one ``transport.write`` at its end
  (``call_soon``). Measured against writing the first one at once: a lone request/response
  round trip is no slower (the flush runs microseconds later), and under load there is one
  ``send`` per iteration instead of two.
- Unacknowledged publishes are bounded by the broker's Receive Maximum; a publish waits
  for room rather than overrunning it (the broker would disconnect).
- Two lanes wait for that room: control messages (requests, replies, receipts) and bulk
  ones (notifications, ``Message.bulk``). Room goes to waiting control messages first;
  bulk ones may fill the window only up to :attr:`Flow.bulk_limit`, so a tenth of it (at
  least one) stays free for control traffic. Each lane is first come, first served, so
  notifications leave in the order they were published.
- A lane holds two kinds of waiters: a future that wakes a ``publish()`` call, and a
  :class:`Queued` publish (``start_publish``), which is sent by whatever frees the room
  (a PUBACK, mostly) without a task of its own to wake: a sender's notifications cost no
  task and no wake-up each, only the packet.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import TYPE_CHECKING, Protocol, cast

from mqttpush.errors import ConnectionLostError

if TYPE_CHECKING:
    from mqttpush.transport.base import Message
    from mqttpush.transport.native.packets import SubAck

__all__ = ["Acked", "Flow", "Queued"]

_MAX_PACKET_ID = 65_535


class Queued(Protocol):
    """A publish waiting in a lane that is sent, not woken, when it gets room."""

    def done(self) -> bool:
        """Whether it ended already (failed, or its caller gave it up)."""
        ...

    def send(self) -> bool:
        """Send it now (its packet goes into ``pending``); False if it failed instead."""
        ...

    def fail(self, why: str) -> None:
        """End it with :class:`~mqttpush.errors.ConnectionLostError`: the connection ended."""
        ...


_Waiter = asyncio.Future[None] | Queued


class Acked(Protocol):
    """What waits for a publish's PUBACK in ``pending``: a future, or a queued publish."""

    def done(self) -> bool:
        """Whether it ended already."""
        ...

    def set_result(self, reason: int, /) -> None:
        """The PUBACK's reason code (or NO_ACK: none came in time)."""
        ...

    def set_exception(self, exc: BaseException, /) -> None:
        """The connection ended first."""
        ...


class Flow(asyncio.Protocol):
    """The writing and waiting half of one connection's protocol.

    Args:
        loop: The event loop the connection runs on.
        where: ``host:port`` of the broker, for messages.
    """

    __slots__ = (
        "_bulk_granted",
        "_bulk_waiters",
        "_drain_waiters",
        "_flushing",
        "_inbox_waiter",
        "_out",
        "_room_granted",
        "_room_waiters",
        "_transport",
        "bulk_ids",
        "bulk_limit",
        "inbox",
        "inbox_bytes",
        "inbox_max_bytes",
        "inbox_max_messages",
        "last_received",
        "last_sent",
        "loop",
        "lost",
        "next_id",
        "paused",
        "pending",
        "reading_paused",
        "receive_maximum",
        "subacks",
        "where",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str) -> None:
        self.loop = loop
        self.where = where
        self.pending: dict[int, tuple[Acked, float]] = {}  # in send order
        self.bulk_ids: set[int] = set()  # packet ids of the bulk publishes in ``pending``
        self.subacks: dict[int, asyncio.Future[SubAck]] = {}
        self.inbox: deque[Message] = deque()
        self.receive_maximum = self.bulk_limit = 0  # bulk_limit: bulk publishes in flight
        self.set_receive_maximum(65_535)
        self.next_id = 1
        self.paused = False
        self.lost: str | None = None  # why the connection ended, once it has
        self.last_sent = self.last_received = loop.time()
        self.inbox_bytes = 0
        self.inbox_max_messages = 1_000
        self.inbox_max_bytes = 16 << 20
        self.reading_paused = False
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flushing = False
        self._inbox_waiter: asyncio.Future[None] | None = None
        self._room_waiters: deque[_Waiter] = deque()  # control messages
        self._bulk_waiters: deque[_Waiter] = deque()
        self._room_granted = 0  # waiters woken for room that have not taken it yet
        self._bulk_granted = 0  # of which bulk ones
        self._drain_waiters: list[asyncio.Future[None]] = []

    # -- asyncio.Protocol: the socket and its buffer -------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; TCP_NODELAY, or a round trip waits on delayed ACKs."""
        self._transport = cast("asyncio.Transport", transport)  # a stream transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def pause_writing(self) -> None:
        """The socket buffer is full: publishers wait in :meth:`drain`."""
        self.paused = True

    def resume_writing(self) -> None:
        """The socket buffer has room again."""
        self.paused = False
        self._release(self._drain_waiters)

    # -- writing -------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write ``data``, joined with the other writes of this loop iteration."""
        if self.lost is not None:
            raise ConnectionLostError(self.lost)
        self._out.append(data)
        if not self._flushing:
            self._flushing = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        out = self._out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            if self._transport is not None and self.lost is None:
                self._transport.write(data)
        self.last_sent = self.loop.time()

    async def drain(self) -> None:
        """Wait while the socket buffer is full (raises if the connection goes)."""
        while self.paused and self.lost is None:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
        if self.lost is not None:
            raise ConnectionLostError(self.lost)

    # -- flow control and waiting --------------------------------------------------------

    def allocate_id(self) -> int:
        """Return a packet id that no publish or subscribe in flight uses."""
        packet_id = self.next_id
        pending, subacks = self.pending, self.subacks
        for _ in range(_MAX_PACKET_ID):
            if packet_id not in pending and packet_id not in subacks:
                self.next_id = packet_id % _MAX_PACKET_ID + 1
                return packet_id
            packet_id = packet_id % _MAX_PACKET_ID + 1
        raise ConnectionLostError(f"no free packet id on the connection to {self.where}")

    def set_receive_maximum(self, maximum: int) -> None:
        """Take the broker's Receive Maximum; bulk publishes may fill it less a tenth."""
        self.receive_maximum = maximum
        self.bulk_limit = max(maximum - max(maximum // 10, 1), 1)

    def room_taken(self, *, bulk: bool = False) -> bool:
        """Whether a QoS 1 publish must queue for room: none left, or others wait first."""
        if self._room_waiters or len(self.pending) + self._room_granted >= self.receive_maximum:
            return True
        return bulk and (
            bool(self._bulk_waiters) or len(self.bulk_ids) + self._bulk_granted >= self.bulk_limit
        )

    async def wait_room(self, *, bulk: bool = False) -> None:
        """Wait for room under the broker's Receive Maximum, in this message's lane.

        Control messages go before every bulk one waiting; within a lane, first come,
        first served: a publish never passes one queued before it, so a task's final
        notification does not overtake its earlier ones. Once this returns, the caller
        takes the room at once (puts its packet in :attr:`pending`).
        """
        waiters = self._bulk_waiters if bulk else self._room_waiters
        if self.lost is not None:
            raise ConnectionLostError(self.lost)
        waiter: asyncio.Future[None] = self.loop.create_future()
        waiters.append(waiter)
        self.wake_room()  # room may be free already (only others queued first)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._ungrant(bulk=bulk)
                self.wake_room()  # hand on the room this waiter was given
            raise
        if self.lost is not None:
            raise ConnectionLostError(self.lost)
        self._ungrant(bulk=bulk)

    def queue(self, queued: Queued, *, bulk: bool = False) -> None:
        """Put ``queued`` in its lane, behind every publish waiting there; it is sent in turn."""
        (self._bulk_waiters if bulk else self._room_waiters).append(queued)
        self.wake_room()  # room may be free already (only others queued first)

    def _ungrant(self, *, bulk: bool) -> None:
        self._room_granted = max(0, self._room_granted - 1)
        if bulk:
            self._bulk_granted = max(0, self._bulk_granted - 1)

    def wake_room(self) -> None:
        """Give the free room to waiting publishes: control ones first, then bulk ones."""
        free = self.receive_maximum - len(self.pending) - self._room_granted
        control = self._room_waiters
        while free > 0 and control:
            if self._grant(control.popleft(), bulk=False):
                free -= 1
        bulk = self._bulk_waiters
        if free <= 0 or not bulk:
            return
        free = min(free, self.bulk_limit - len(self.bulk_ids) - self._bulk_granted)
        while free > 0 and bulk:
            if self._grant(bulk.popleft(), bulk=True):
                free -= 1

    def _grant(self, waiter: _Waiter, *, bulk: bool) -> bool:
        """Give one waiter room: wake a ``publish()``, or send a queued publish; say if taken."""
        if waiter.done():
            return False
        if isinstance(waiter, asyncio.Future):
            waiter.set_result(None)
            self._room_granted += 1
            if bulk:
                self._bulk_granted += 1
            return True
        return waiter.send()

    def take(self) -> Message:
        """Take the oldest message from the inbox; read the socket again once it drained."""
        message = self.inbox.popleft()
        self.inbox_bytes -= len(message.payload)
        if self.reading_paused:
            self.resume_if_drained()
        return message

    def resume_if_drained(self) -> None:
        """Read the socket again if the inbox has drained to half of both its bounds."""
        if (
            len(self.inbox) <= self.inbox_max_messages // 2
            and self.inbox_bytes <= self.inbox_max_bytes // 2
        ):
            self.reading_paused = False
            self.last_received = self.loop.time()  # silence while not reading is no sign
            if self._transport is not None and self.lost is None:
                self._transport.resume_reading()

    def _bound_inbox(self) -> None:
        """Stop reading the socket while the inbox is over a bound."""
        if not self.reading_paused and (
            len(self.inbox) >= self.inbox_max_messages or self.inbox_bytes >= self.inbox_max_bytes
        ):
            self.reading_paused = True
            if self._transport is not None:
                self._transport.pause_reading()

    def wait_inbox(self) -> asyncio.Future[None]:
        """A future that completes when a message arrives or the connection ends."""
        waiter = self._inbox_waiter
        if waiter is None or waiter.done():
            waiter = self._inbox_waiter = self.loop.create_future()
        return waiter

    def _wake_inbox(self) -> None:
        waiter, self._inbox_waiter = self._inbox_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release(self, waiters: list[asyncio.Future[None]] | deque[_Waiter]) -> None:
        """Wake every waiter (they find the connection lost); fail every queued publish."""
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(waiter, asyncio.Future):
                waiter.set_result(None)
            else:
                waiter.fail(self.lost or f"connection to {self.where} lost")
        waiters.clear()
