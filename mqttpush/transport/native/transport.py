"""The :class:`NativeTransport`: the transport interface over one :class:`Link` at a time.

Choices that are not obvious:

- Inbound QoS 1 messages are never acknowledged on receipt: :meth:`NativeTransport.ack`
  sends the PUBACK once the handler is done, so the broker redelivers an unhandled one;
  PUBACKs leave in the order the messages came (:mod:`mqttpush.transport.ackorder`).
- ``is_connected`` stays true after a drop until ``messages()`` reports it or
  ``disconnect()`` is called, as with the aiomqtt transport (the reconnect logic in
  :mod:`mqttpush.connection` relies on it).
- A publish waits up to twice the connect timeout for the socket to drain, and as long
  for its PUBACK once written; waiting for room under the broker's Receive Maximum has no
  deadline of its own (it is a queue behind this client's own publishes, which end with
  their PUBACKs or with the connection). Control messages wait ahead of bulk ones
  (:mod:`mqttpush.transport.native.flow`).
- Packets are checked against the broker's announced limits before they are sent
  (:class:`~mqttpush.errors.PacketRefusedError`); the connection stays up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError, ConnectionLostError, PacketRefusedError
from mqttpush.transport.broker import BrokerTransport
from mqttpush.transport.native.connect import handshake
from mqttpush.transport.native.link import Link
from mqttpush.transport.native.outgoing import (
    QueuedPublish,
    check_limits,
    encode,
    outcome,
    put_in_flight,
)
from mqttpush.transport.native.packets import (
    SubAck,
    encode_connect,
    encode_puback,
    encode_subscribe,
)
from mqttpush.transport.native.session import Session
from mqttpush.transport.reasons import check_refusal
from mqttpush.transport.tls import tls_context

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.settings import BrokerSettings
    from mqttpush.transport.base import Message

__all__ = ["NativeTransport"]


class NativeTransport(BrokerTransport):
    """An MQTT 5 connection to Mosquitto (or any MQTT 5 broker) on plain asyncio.

    Args:
        settings: Where the broker is and how to connect.
    """

    def __init__(self, settings: BrokerSettings) -> None:
        super().__init__(settings)
        self._link: Link | None = None
        self._ack_timeout = settings.connect_timeout * 2
        self._session = Session()

    @property
    def is_connected(self) -> bool:
        """Whether a connection is open: from connect() until a drop is reported or closed."""
        return self._link is not None

    async def connect(self) -> None:
        """Connect with MQTT 5 and TCP_NODELAY (and TLS when configured).

        A persistent client whose session the broker resumed sends its unacknowledged
        publishes again first (with DUP).

        Raises:
            BrokerUnavailableError: The broker is unreachable, too slow, not trusted, or
                refused the connection (the message gives the CONNACK reason code).
            ConfigurationError: The TLS files cannot be loaded, or a setting (such as the
                user name) cannot be carried by MQTT.
        """
        s = self._settings
        context = tls_context(s)
        old, self._link = self._link, None
        if old is not None:
            old.drop("replaced by a new connection")
        loop = asyncio.get_running_loop()
        link = Link(
            loop,
            self.where,
            self._client_id,
            self._generation + 1,
            receive_maximum=s.receive_maximum,
            maximum_packet_size=s.maximum_packet_size,
            strict_receive_maximum=s.strict_receive_maximum,
        )
        link.inbox_max_messages = s.inbox_max_messages
        link.inbox_max_bytes = s.inbox_max_bytes
        try:
            connect_packet = encode_connect(
                self._client_id,
                keepalive=s.keepalive,
                clean_start=not self.persistent,
                username=s.username,
                password=s.secret(),
                session_expiry=s.session_expiry if self.persistent else None,
                receive_maximum=s.receive_maximum,
                maximum_packet_size=s.maximum_packet_size,
                will=self.will,
            )
        except PacketRefusedError as exc:
            raise ConfigurationError(f"the broker settings cannot be sent: {exc}") from exc
        connack = await handshake(link, s, context, connect_packet)
        link.start(connack, s.keepalive, self._ack_timeout)
        if self.persistent:
            self._session.resume(link, session_present=connack.session_present)
        self._link = link
        self._generation += 1
        self._session_present = connack.session_present

    async def disconnect(self) -> None:
        """Send DISCONNECT and close; pending publishes fail. Safe when already closed."""
        link, self._link = self._link, None
        if link is not None:
            await link.close(
                f"disconnected from the MQTT broker at {self.where}", self._settings.connect_timeout
            )

    def _require(self) -> Link:
        link = self._link
        if link is None or link.lost is not None:
            raise ConnectionLostError(f"not connected to the MQTT broker at {self.where}")
        return link

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe to one filter and wait for the SUBACK.

        Raises:
            ConnectionLostError: Not connected, or no SUBACK in time.
            PacketRefusedError: The filter breaks MQTT (a misplaced wildcard, ...) or the
                broker's limits, or QoS 2 was asked for; nothing was sent.
            BrokerRefusedError: The broker refused the subscription (``AccessDeniedError``
                for 0x87 not authorized).
        """
        link = self._require()
        if qos not in (0, 1):
            raise PacketRefusedError(
                f"cannot subscribe to {topic_filter!r}: QoS {qos} not supported"
            )
        packet_id = link.allocate_id()
        packet = encode_subscribe(packet_id, topic_filter, qos)
        check_limits(link, packet, f"the subscription to {topic_filter!r}")
        if not link.wildcards and ("+" in topic_filter or "#" in topic_filter):
            raise PacketRefusedError(
                f"cannot subscribe to {topic_filter!r}: the broker allows no wildcards"
            )
        if not link.shared and topic_filter.startswith("$share/"):
            raise PacketRefusedError(
                f"cannot subscribe to {topic_filter!r}: the broker allows no shared subscriptions"
            )
        waiter: asyncio.Future[SubAck] = link.loop.create_future()
        link.subacks[packet_id] = waiter
        try:
            link.send(packet)
            async with asyncio.timeout(self._settings.connect_timeout):
                suback = await waiter
        except TimeoutError:
            raise ConnectionLostError(
                f"subscribe to {topic_filter!r} failed: no SUBACK from {self.where}"
            ) from None
        except ConnectionLostError as exc:
            raise ConnectionLostError(f"subscribe to {topic_filter!r} failed: {exc}") from exc
        finally:
            link.subacks.pop(packet_id, None)
        check_refusal(suback.reason_codes[0], f"the subscription to {topic_filter!r}")

    async def publish(self, message: Message) -> bool:
        """Publish and, for QoS 1, wait for room under the Receive Maximum, then the PUBACK.

        Returns:
            False when the broker acknowledged with "no matching subscribers"
            (reason code 16): nobody, not even a stored session, will get it.

        Raises:
            ConnectionLostError: Not connected, the connection dropped, or the socket did
                not drain or no PUBACK came within twice the connect timeout each.
            PacketRefusedError: The message cannot be encoded, or breaks the broker's
                limits (QoS, Maximum Packet Size); nothing was sent.
            BrokerRefusedError: The broker refused it (``AccessDeniedError`` for 0x87).
        """
        link = self._link
        if link is None or link.lost is not None:
            raise ConnectionLostError(f"not connected to the MQTT broker at {self.where}")
        bulk = message.bulk
        if link.paused:
            try:
                async with asyncio.timeout(self._ack_timeout):
                    await link.drain()
            except TimeoutError:
                link.note_timeout()
                raise self._no_ack(message) from None
        if message.qos == 0:
            link.send(encode(link, message, 0))
            return True
        if link.room_taken(bulk=bulk):
            # Queued behind this client's own publishes: no sign of a silent broker, so
            # no deadline here; the PUBACKs of those in flight (or the connection's end)
            # free the room.
            await link.wait_room(bulk=bulk)
        future: asyncio.Future[int] = link.loop.create_future()
        try:
            put_in_flight(link, message, self._ack_timeout, future)
        except PacketRefusedError:
            link.wake_room()  # the room this one was given goes to the next in line
            raise
        return outcome(message, await future)

    def start_publish(self, message: Message) -> asyncio.Future[bool] | None:
        """Send a QoS 1 publish in its turn, with no task waiting for it (see the base class).

        None when it would first have to wait for the socket to drain or for the
        connection: ``publish()`` waits for those.
        """
        link = self._link
        if link is None or link.lost is not None or link.paused or message.qos != 1:
            return None
        queued = QueuedPublish(link, message, self._ack_timeout)
        if link.room_taken(bulk=message.bulk):
            link.queue(queued, bulk=message.bulk)
        else:
            queued.send()
        return queued.result

    @staticmethod
    def _no_ack(message: Message) -> ConnectionLostError:
        return ConnectionLostError(
            f"publish to {message.topic!r}: no acknowledgement from the broker"
        )

    async def ack(self, message: Message) -> None:
        """Send the PUBACK of a handled QoS 1 message, if its connection is still this one.

        It goes once every message received before it was acknowledged too.
        """
        link = self._link
        if (
            message.qos == 0
            or link is None
            or link.lost is not None
            or message.generation != self._generation
        ):
            return
        for packet_id in link.acks.handled(message.mid):
            link.send(encode_puback(packet_id))
            if link.unacked_in:
                link.unacked_in -= 1
        if link.reading_paused:
            link.resume_if_drained()

    def buffered(self) -> int:
        """Messages read from the socket and not yet taken."""
        link = self._link
        return 0 if link is None else len(link.inbox)

    async def messages(self) -> AsyncIterator[Message]:
        """Yield inbound messages until the connection drops.

        Raises:
            ConnectionLostError: The connection dropped (or was closed).
            SessionTakenOverError: The broker said another client took this client id.
        """
        link = self._link
        if link is None:  # a connection that already ended still says why, below
            raise ConnectionLostError(f"not connected to the MQTT broker at {self.where}")
        inbox = link.inbox
        while True:
            if link.lost is not None:
                if self._link is link:
                    self._link = None
                raise link.lost_error()
            if inbox:  # Flow.take, inlined: this runs once per message
                message = inbox.popleft()
                link.inbox_bytes -= len(message.payload)
                if link.reading_paused:
                    link.resume_if_drained()
                if message.qos:
                    link.acks.received(message.mid)
                yield message
            else:
                await link.wait_inbox()
