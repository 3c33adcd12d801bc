"""QoS 1 publishes on their way out: checked, encoded, put in flight, and their outcome.

:func:`put_in_flight` is the one place a QoS 1 PUBLISH enters a connection's ``pending``
map; :func:`outcome` reads its PUBACK the way ``publish()`` reports it. A
:class:`QueuedPublish` is a publish started with ``start_publish``: it waits in its lane
(:mod:`mqttpush.transport.native.flow`) and is sent by whatever frees room for it, its
outcome a future instead of a task awaiting the PUBACK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.errors import ConnectionLostError, MqttPushError, PacketRefusedError
from mqttpush.transport.native.packets import encode_publish
from mqttpush.transport.native.timer import NO_ACK
from mqttpush.transport.reasons import NO_MATCHING_SUBSCRIBERS, check_refusal

if TYPE_CHECKING:
    import asyncio

    from mqttpush.transport.base import Message
    from mqttpush.transport.native.flow import Acked
    from mqttpush.transport.native.link import Link

__all__ = ["QueuedPublish", "check_limits", "encode", "outcome", "put_in_flight"]


def check_limits(link: Link, packet: bytes, what: str) -> None:
    """Refuse ``packet`` if it is larger than the broker's Maximum Packet Size."""
    if len(packet) > link.maximum_packet_size:
        raise PacketRefusedError(
            f"cannot send {what}: {len(packet)} bytes exceed the broker's maximum "
            f"packet size of {link.maximum_packet_size}"
        )


def encode(link: Link, message: Message, packet_id: int) -> bytes:
    """``message`` as a PUBLISH packet, within the broker's QoS and size limits."""
    if message.qos > link.maximum_qos:
        raise PacketRefusedError(
            f"cannot publish to {message.topic!r}: the broker accepts QoS up to {link.maximum_qos}"
        )
    packet = encode_publish(message, packet_id)
    check_limits(link, packet, f"the publish to {message.topic!r}")
    return packet


def put_in_flight(link: Link, message: Message, ack_timeout: float, acked: Acked) -> None:
    """Send a QoS 1 ``message`` now; ``acked`` gets its PUBACK's reason code (or NO_ACK).

    The caller has the room for it under the broker's Receive Maximum.

    Raises:
        ConnectionLostError: The connection ended.
        PacketRefusedError: It cannot be encoded, or breaks the broker's limits; nothing
            was sent.
    """
    if link.lost is not None:
        raise ConnectionLostError(link.lost)
    packet_id = link.allocate_id()
    packet = encode(link, message, packet_id)
    link.pending[packet_id] = (acked, link.loop.time() + ack_timeout)
    if message.bulk:
        link.bulk_ids.add(packet_id)
    if link.session is not None:
        link.session[packet_id] = packet
    link.send(packet)


def outcome(message: Message, reason: int) -> bool:
    """What a publish of ``message`` reports for the PUBACK ``reason`` code.

    Returns:
        False for "no matching subscribers" (reason code 16).

    Raises:
        ConnectionLostError: No PUBACK came in time.
        BrokerRefusedError: The broker refused it.
    """
    if reason == NO_ACK:
        raise ConnectionLostError(
            f"publish to {message.topic!r}: no acknowledgement from the broker"
        )
    check_refusal(reason, f"the publish to {message.topic!r}")
    return reason != NO_MATCHING_SUBSCRIBERS


class QueuedPublish:
    """A QoS 1 publish sent when its lane gives it room; :attr:`result` gets its outcome.

    The result is what ``publish()`` would have returned (or raised). No task waits for
    the PUBACK: the link sends the packet when room frees, and the PUBACK's reason code
    comes straight here (this stands in ``pending`` where a future would), so the
    result is set in the same loop step the PUBACK is read.
    """

    __slots__ = ("_ack_timeout", "_link", "message", "result")

    def __init__(self, link: Link, message: Message, ack_timeout: float) -> None:
        self._link = link
        self._ack_timeout = ack_timeout
        self.message = message
        self.result: asyncio.Future[bool] = link.loop.create_future()

    def done(self) -> bool:
        """Whether it ended already (failed, acknowledged, or given up by its caller)."""
        return self.result.done()

    def send(self) -> bool:
        """Put it in flight now; False if it could not be sent (its result says why)."""
        try:
            put_in_flight(self._link, self.message, self._ack_timeout, self)
        except (ConnectionLostError, PacketRefusedError) as exc:
            self.result.set_exception(exc)
            return False
        return True

    def fail(self, why: str) -> None:
        """The connection ended before it was sent."""
        self.set_exception(ConnectionLostError(why))

    def set_result(self, reason: int) -> None:
        """Its PUBACK came with ``reason`` (or NO_ACK: none came in time)."""
        result = self.result
        if result.done():
            return
        try:
            result.set_result(outcome(self.message, reason))
        except MqttPushError as exc:
            result.set_exception(exc)

    def set_exception(self, exc: BaseException) -> None:
        """The connection ended while it was in flight."""
        if not self.result.done():
            self.result.set_exception(exc)
