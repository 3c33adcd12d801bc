"""One connection to the broker as an ``asyncio.Protocol``: packets in, keep alive, shutdown.

:class:`Link` adds to :class:`~mqttpush.transport.native.flow.Flow` what the broker
drives: it frames and dispatches received packets, runs the connection's timer, and
fails whatever waits on the connection when it ends.

Choices that are not obvious:

- PUBACK deadlines are checked by one timer per connection (with keep alive), not an
  ``asyncio.timeout`` per publish; a timed-out publish keeps its packet id until the
  broker answers, so an id is never reused while the broker may still hold it.
- A connection has its own protocol object, so a stale acknowledgement or message
  iterator can never touch the next connection.
"""

from __future__ import annotations

import asyncio
import time

from mqttpush.errors import ConnectionLostError, ProtocolError, SessionTakenOverError
from mqttpush.transport.native.flow import Flow
from mqttpush.transport.native.packets import (
    CONNACK,
    DISCONNECT,
    MAX_REMAINING_LENGTH,
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
    ConnAck,
    PacketReader,
    decode_connack,
    decode_disconnect,
    decode_puback,
    decode_publish,
    decode_suback,
    encode_disconnect,
    encode_pingreq,
)
from mqttpush.transport.native.reasons import SESSION_TAKEN_OVER, reason_text

__all__ = ["NO_ACK", "Link"]

NO_ACK = -1  # the result a timed-out PUBACK future gets


class Link(Flow):
    """One TCP (or TLS) connection to the broker: framing, acknowledgements, keep alive."""

    __slots__ = (
        "_closed",
        "_ping_sent_at",
        "_reader",
        "_timer",
        "ack_timeout",
        "client_id",
        "connack",
        "generation",
        "keepalive",
        "lost_cause",
        "maximum_packet_size",
        "maximum_qos",
        "taken_over",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, where: str, client_id: str, generation: int
    ) -> None:
        super().__init__(loop, where)
        self.client_id = client_id
        self.generation = generation
        self.keepalive = 0.0
        self.ack_timeout = 10.0
        self.connack: asyncio.Future[ConnAck] = loop.create_future()
        self.maximum_qos = 2
        self.maximum_packet_size = MAX_REMAINING_LENGTH + 5
        self.taken_over = False
        self.lost_cause: Exception | None = None  # what ended the connection, if it failed
        self._reader = PacketReader()
        self._ping_sent_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol: packets in, and the end -----------------------------------------

    def data_received(self, data: bytes) -> None:
        """Frame and handle every complete packet in ``data``."""
        try:
            packets = self._reader.feed(data)
            if packets:
                self._handle(packets)
        except ProtocolError as exc:
            self.drop(f"malformed data from the broker: {exc}")

    def _handle(  # noqa: PLR0912 - one branch per packet type, kept flat for speed
        self, packets: list[tuple[int, memoryview]]
    ) -> None:
        received_at = time.monotonic()
        generation = self.generation
        inbox = self.inbox
        pending = self.pending
        queued = len(inbox)
        freed = 0
        for first, body in packets:
            kind = first >> 4
            if kind == PUBLISH:
                if (first & 0x06) == 0x04:  # noqa: PLR2004 - the QoS bits say 2
                    raise ProtocolError("QoS 2 PUBLISH, but no subscription asked for QoS 2")
                inbox.append(decode_publish(first, body, received_at, generation))
            elif kind == PUBACK:
                packet_id, reason = decode_puback(body)
                entry = pending.pop(packet_id, None)
                if entry is not None:
                    freed += 1
                    if not entry[0].done():
                        entry[0].set_result(reason)
            elif kind == PINGRESP:
                self._ping_sent_at = None
            elif kind == SUBACK:
                suback = decode_suback(body)
                waiter = self.subacks.pop(suback.packet_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(suback)
            elif kind == CONNACK and not self.connack.done():
                self.connack.set_result(decode_connack(body))
            elif kind == DISCONNECT:
                self._broker_disconnected(body)
                return
            else:
                raise ProtocolError(f"unexpected packet type {kind} from the broker")
        if len(inbox) > queued:
            self._wake_inbox()
        if freed and self._room_waiters:
            self._wake_room(freed)

    def _broker_disconnected(self, body: memoryview) -> None:
        disconnect = decode_disconnect(body)
        if disconnect.reason_code == SESSION_TAKEN_OVER:
            self.taken_over = True
        why = f" ({disconnect.reason_string})" if disconnect.reason_string else ""
        self.drop(f"the broker sent DISCONNECT with {reason_text(disconnect.reason_code)}{why}")

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail everything that waits on this connection."""
        self._transport = None
        self.lost_cause = exc
        cause = "the broker closed the connection" if exc is None else str(exc) or repr(exc)
        self._shutdown(f"connection to the MQTT broker at {self.where} lost: {cause}")
        if not self._closed.done():
            self._closed.set_result(None)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, connack: ConnAck, keepalive: int, ack_timeout: float) -> None:
        """Apply the broker's limits from its CONNACK and start the keep-alive timer."""
        self.receive_maximum = connack.receive_maximum
        self.maximum_qos = connack.maximum_qos
        if connack.maximum_packet_size is not None:
            self.maximum_packet_size = connack.maximum_packet_size
        if connack.server_keep_alive is not None:
            keepalive = connack.server_keep_alive
        self.keepalive = float(keepalive)
        self.ack_timeout = ack_timeout
        self._timer = self.loop.call_later(self._interval(), self._tick)

    def _interval(self) -> float:
        """Timer period: half the keep alive, and a tenth of the PUBACK timeout."""
        period = self.ack_timeout / 10
        if self.keepalive:
            period = min(period, self.keepalive / 2)
        return max(period, 0.01)

    def _tick(self) -> None:
        if self.lost is not None:
            return
        now = self.loop.time()
        period = self._interval()
        if self.keepalive:
            if self._ping_sent_at is not None:
                if now - self._ping_sent_at >= self.keepalive:
                    self.drop(f"no PINGRESP within {self.keepalive:g} s")
                    return
            elif now - self.last_sent >= self.keepalive - period:
                self.send(encode_pingreq())  # the next tick may come up to a period late
                self._ping_sent_at = now
        for future, deadline in self.pending.values():  # in send order: oldest first
            if deadline > now:
                break
            if not future.done():
                future.set_result(NO_ACK)
        self._timer = self.loop.call_later(period, self._tick)

    def drop(self, cause: str) -> None:
        """End the connection at once because of ``cause``."""
        self._shutdown(f"connection to the MQTT broker at {self.where} lost: {cause}")
        if self._transport is not None:
            self._transport.abort()

    async def close(self, message: str, timeout: float) -> None:
        """Send what is queued and a DISCONNECT, then close (abort after ``timeout``)."""
        transport = self._transport
        if transport is not None and self.lost is None:
            self._flush()
            transport.write(encode_disconnect(0))
        self._shutdown(message)
        if transport is None:
            return
        transport.close()
        try:
            async with asyncio.timeout(timeout):
                await self._closed
        except TimeoutError:
            transport.abort()

    def _shutdown(self, message: str) -> None:
        """Record why the connection ended and fail whatever waits on it."""
        if self.lost is not None:
            return
        self.lost = message
        if self._timer is not None:
            self._timer.cancel()
        self._out.clear()
        if not self.connack.done():
            self.connack.set_exception(ConnectionLostError(message))
        pending, self.pending = self.pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(ConnectionLostError(message))
        subacks, self.subacks = self.subacks, {}
        for waiter in subacks.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLostError(message))
        self._release(self._room_waiters)
        self._release(self._drain_waiters)
        self._wake_inbox()

    def lost_error(self) -> ConnectionLostError:
        """The error ``messages()`` raises for this ended connection."""
        if self.taken_over:
            return SessionTakenOverError(
                f"another client connected to {self.where} with client id "
                f"{self.client_id!r} and took over its session"
            )
        return ConnectionLostError(self.lost or f"connection to {self.where} lost")
