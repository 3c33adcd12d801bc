"""One connection to the broker as an ``asyncio.Protocol``: packets in, limits, shutdown.

:class:`Link` adds to :class:`~mqttpush.transport.native.timer.Timer` what the broker
drives: it frames and dispatches received packets, holds the broker to the limits this
client announced, and fails whatever waits on the connection when it ends.

Choices that are not obvious:

- What MQTT 5 calls a malformed packet or a protocol error ends the connection with a
  DISCONNECT naming it: a packet over this client's Maximum Packet Size (0x95, refused
  before it is buffered), a Topic Alias (0x94: none is ever allowed), a packet before
  the CONNACK or a PINGRESP nobody asked for (0x82), reserved flags set (0x81).
- More unacknowledged QoS 1 messages than the Receive Maximum are answered with 0x93
  only with ``strict_receive_maximum``; by default they are read (the inbox bound still
  holds) and logged once per connection. Mosquitto 2.0.11 overruns a client's Receive
  Maximum right after a run of PUBACKs, and sends a resumed session's whole backlog at
  once: a DISCONNECT would only repeat. A resumed session is never refused.
- A connection has its own protocol object, so a stale acknowledgement or message
  iterator can never touch the next connection.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mqttpush.errors import ConnectionLostError, ProtocolError, SessionTakenOverError
from mqttpush.transport.ackorder import AckOrder
from mqttpush.transport.native.packets import (
    CONNACK,
    DISCONNECT,
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
    ConnAck,
    PacketError,
    PacketReader,
    decode_connack,
    decode_disconnect,
    decode_puback,
    decode_publish,
    decode_suback,
    encode_disconnect,
)
from mqttpush.transport.native.timer import Timer
from mqttpush.transport.reasons import (
    MALFORMED_PACKET,
    PROTOCOL_ERROR,
    RECEIVE_MAXIMUM_EXCEEDED,
    SESSION_TAKEN_OVER,
    reason_text,
)

__all__ = ["Link"]

log = logging.getLogger(__name__)

_GRACE = 1.0  # seconds a closing socket may take to send its DISCONNECT before it is cut


class Link(Timer):
    """One TCP (or TLS) connection to the broker: framing, acknowledgements, keep alive.

    Args:
        loop: The event loop the connection runs on.
        where: ``host:port`` of the broker, for messages.
        client_id: The client id, for messages.
        generation: Which connection of the transport this is.
        receive_maximum: The Receive Maximum this client announced.
        maximum_packet_size: The Maximum Packet Size this client announced.
    """

    __slots__ = (
        "_closed",
        "_reader",
        "acks",
        "client_id",
        "connack",
        "disconnect_code",
        "generation",
        "lost_cause",
        "maximum_packet_size",
        "maximum_qos",
        "overruns",
        "own_receive_maximum",
        "resumed",
        "server_reference",
        "session",
        "shared",
        "strict",
        "unacked_in",
        "wildcards",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        where: str,
        client_id: str,
        generation: int,
        *,
        receive_maximum: int = 65_535,
        maximum_packet_size: int = 268_435_460,
        strict_receive_maximum: bool = False,
    ) -> None:
        super().__init__(loop, where)
        self.client_id = client_id
        self.generation = generation
        self.own_receive_maximum = receive_maximum
        self.unacked_in = 0  # QoS 1 messages received and not yet acknowledged
        self.overruns = 0  # times the broker went past the Receive Maximum (not strict)
        self.acks = AckOrder()  # those taken from the inbox, in order, for their PUBACKs
        self.resumed = False  # the broker resumed a stored session on this connection
        self.strict = strict_receive_maximum  # 0x93 past the Receive Maximum (not resumed)
        self.connack: asyncio.Future[ConnAck] = loop.create_future()
        self.maximum_qos = 2
        self.maximum_packet_size = 268_435_460  # the broker's; MQTT's largest until it says
        self.wildcards = self.shared = True
        self.session: dict[int, bytes] | None = None  # unacknowledged publishes, if kept
        self.disconnect_code: int | None = None  # the reason code of the broker's DISCONNECT
        self.server_reference: str | None = None
        self.lost_cause: Exception | None = None  # what ended the connection, if it failed
        self._reader = PacketReader(maximum_packet_size)
        self._closed: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol: packets in, and the end -----------------------------------------

    def data_received(self, data: bytes) -> None:
        """Frame and handle every complete packet in ``data``."""
        self.last_received = self.loop.time()
        try:
            packets = self._reader.feed(data)
            if packets:
                self._handle(packets)
        except ProtocolError as exc:
            self.refuse(exc)

    def _handle(  # noqa: PLR0912, PLR0915 - one branch per packet type, kept flat for speed
        self, packets: list[tuple[int, memoryview]]
    ) -> None:
        received_at = time.monotonic()
        generation = self.generation
        inbox = self.inbox
        pending = self.pending
        bulk_ids = self.bulk_ids
        session = self.session
        queued = len(inbox)
        unacked = self.unacked_in
        size = 0  # payload bytes added to the inbox
        freed = 0
        ready = self.connack.done()
        for first, body in packets:
            kind = first >> 4
            if kind == PUBLISH:
                if not ready:
                    raise PacketError("PUBLISH before the CONNACK", PROTOCOL_ERROR)
                if (first & 0x06) == 0x04:  # noqa: PLR2004 - the QoS bits say 2
                    raise PacketError(
                        "QoS 2 PUBLISH, but no subscription asked for it", PROTOCOL_ERROR
                    )
                message = decode_publish(first, body, received_at, generation)
                inbox.append(message)
                size += len(message.payload)
                if first & 0x02:
                    unacked += 1
                continue
            if first & 0x0F:
                raise PacketError(f"packet type {kind} with reserved flags {first & 0x0F:#x}")
            if kind == PUBACK:
                packet_id, reason = decode_puback(body)
                entry = pending.pop(packet_id, None)
                if bulk_ids:
                    bulk_ids.discard(packet_id)
                if session is not None:
                    session.pop(packet_id, None)
                if entry is not None:
                    freed += 1
                    if not entry[0].done():
                        entry[0].set_result(reason)
            elif kind == PINGRESP and self.ping_sent_at is not None:
                self.ping_sent_at = None
            elif kind == SUBACK:
                suback = decode_suback(body)
                waiter = self.subacks.pop(suback.packet_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(suback)
            elif kind == CONNACK and not ready:
                ready = True
                connack = decode_connack(body)
                self.resumed = connack.session_present  # before the PUBLISHes read with it
                self.strict = self.strict and not self.resumed
                self.connack.set_result(connack)
            elif kind == DISCONNECT:
                self._broker_disconnected(body)
                return
            else:
                what = "a PINGRESP without a PINGREQ" if kind == PINGRESP else f"packet type {kind}"
                raise PacketError(f"unexpected {what} from the broker", PROTOCOL_ERROR)
        if unacked > self.own_receive_maximum and self.unacked_in <= self.own_receive_maximum:
            self._overrun(unacked)  # once each time the count crosses the maximum
        self.unacked_in = unacked
        if len(inbox) > queued:
            self.inbox_bytes += size
            self._wake_inbox()
            self._bound_inbox()
        if freed:
            self.timeouts = 0
            if self._room_waiters or self._bulk_waiters:
                self.wake_room()

    def _overrun(self, unacked: int) -> None:
        """The broker sent more than the Receive Maximum: refuse it (strict), or say so."""
        what = (
            f"{unacked} unacknowledged QoS 1 messages, over this client's Receive "
            f"Maximum of {self.own_receive_maximum}"
        )
        if self.strict:
            raise PacketError(what, RECEIVE_MAXIMUM_EXCEEDED)
        self.overruns += 1
        if self.overruns == 1:
            log.warning("%s: the broker sent %s; reading on, within the inbox bound",
                        self.where, what)  # fmt: skip

    def _broker_disconnected(self, body: memoryview) -> None:
        disconnect = decode_disconnect(body)
        self.disconnect_code = disconnect.reason_code
        self.server_reference = disconnect.server_reference
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
        self.set_receive_maximum(connack.receive_maximum)
        self.maximum_qos = connack.maximum_qos
        self.wildcards, self.shared = connack.wildcards, connack.shared
        if connack.maximum_packet_size is not None:
            self.maximum_packet_size = connack.maximum_packet_size
        if connack.server_keep_alive is not None:
            keepalive = connack.server_keep_alive
        self.start_timer(float(keepalive), ack_timeout)

    def drop(self, cause: str) -> None:
        """End the connection at once because of ``cause``."""
        self._shutdown(f"connection to the MQTT broker at {self.where} lost: {cause}")
        if self._transport is not None:
            self._transport.abort()

    def refuse(self, exc: ProtocolError) -> None:
        """End the connection over a packet MQTT 5 does not allow, with a DISCONNECT naming it."""
        code = getattr(exc, "reason_code", MALFORMED_PACKET)
        transport = self._transport
        if transport is not None and self.lost is None:
            transport.write(encode_disconnect(code))  # ahead of anything queued
        self._shutdown(
            f"connection to the MQTT broker at {self.where} lost: it broke MQTT 5 ({exc}); "
            f"this client disconnected with {reason_text(code)}"
        )
        if transport is not None:
            transport.close()
            self.loop.call_later(_GRACE, transport.abort)

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
        self.stop_timer()
        self._out.clear()
        if not self.connack.done():
            self.connack.set_exception(ConnectionLostError(message))
        pending, self.pending = self.pending, {}
        self.bulk_ids.clear()
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(ConnectionLostError(message))
        subacks, self.subacks = self.subacks, {}
        for waiter in subacks.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLostError(message))
        self._release(self._room_waiters)
        self._release(self._bulk_waiters)
        self._release(self._drain_waiters)
        self._wake_inbox()

    def lost_error(self) -> ConnectionLostError:
        """The error ``messages()`` raises for this ended connection."""
        code = self.disconnect_code
        if code == SESSION_TAKEN_OVER:
            return SessionTakenOverError(
                f"another client connected to {self.where} with client id "
                f"{self.client_id!r} and took over its session",
                reason_code=code,
            )
        return ConnectionLostError(
            self.lost or f"connection to {self.where} lost",
            reason_code=code,
            server_reference=self.server_reference,
        )
