"""The :class:`NativeTransport`: the transport interface over one :class:`Link` at a time.

Choices that are not obvious:

- Inbound QoS 1 messages are never acknowledged on receipt: :meth:`NativeTransport.ack`
  sends the PUBACK once the handler is done, so the broker redelivers an unhandled one.
- ``is_connected`` stays true after a drop until ``messages()`` reports it or
  ``disconnect()`` is called, as with the aiomqtt transport (the reconnect logic in
  :mod:`mqttpush.connection` relies on it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mqttpush.errors import (
    AccessDeniedError,
    ConfigurationError,
    ConnectionLostError,
    ProtocolError,
)
from mqttpush.transport.broker import BrokerTransport
from mqttpush.transport.native.connect import handshake
from mqttpush.transport.native.link import NO_ACK, Link
from mqttpush.transport.native.packets import (
    SubAck,
    encode_connect,
    encode_puback,
    encode_publish,
    encode_subscribe,
)
from mqttpush.transport.native.reasons import (
    NO_MATCHING_SUBSCRIBERS,
    NOT_AUTHORIZED,
    REFUSED,
    reason_text,
)
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

    @property
    def is_connected(self) -> bool:
        """Whether a connection is open: from connect() until a drop is reported or closed."""
        return self._link is not None

    async def connect(self) -> None:
        """Connect with MQTT 5 and TCP_NODELAY (and TLS when configured).

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
        link = Link(loop, self.where, self._client_id, self._generation + 1)
        try:
            connect_packet = encode_connect(
                self._client_id,
                keepalive=s.keepalive,
                clean_start=not self.persistent,
                username=s.username,
                password=s.secret(),
                session_expiry=s.session_expiry if self.persistent else None,
                receive_maximum=s.receive_maximum,
                will=self.will,
            )
        except ProtocolError as exc:
            raise ConfigurationError(f"the broker settings cannot be sent: {exc}") from exc
        connack = await handshake(link, s, context, connect_packet)
        link.start(connack, s.keepalive, self._ack_timeout)
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
            ProtocolError: The filter cannot be sent, QoS 2 was asked for, or the broker
                refused the subscription.
        """
        link = self._require()
        if qos not in (0, 1):
            raise ProtocolError(f"cannot subscribe to {topic_filter!r}: QoS {qos} not supported")
        packet_id = link.allocate_id()
        packet = encode_subscribe(packet_id, topic_filter, qos)
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
        code = suback.reason_codes[0]
        if code == NOT_AUTHORIZED:
            raise AccessDeniedError(
                f"the broker denied the subscription to {topic_filter!r}: {reason_text(code)}"
            )
        if code >= REFUSED:
            raise ProtocolError(
                f"the broker refused the subscription to {topic_filter!r}: {reason_text(code)}"
            )

    async def publish(self, message: Message) -> bool:
        """Publish and, for QoS 1, wait for the broker's PUBACK.

        Returns:
            False when the broker acknowledged with "no matching subscribers"
            (reason code 16): nobody, not even a stored session, will get it.

        Raises:
            ConnectionLostError: Not connected, the connection dropped, or no PUBACK
                within twice the connect timeout.
            ProtocolError: The message cannot be encoded, or the broker refused it.
        """
        link = self._link
        if link is None or link.lost is not None:
            raise ConnectionLostError(f"not connected to the MQTT broker at {self.where}")
        if link.paused:
            await link.drain()
        if message.qos == 0:
            link.send(self._encode(link, message, 0))
            return True
        if len(link.pending) >= link.receive_maximum:
            try:
                async with asyncio.timeout(self._ack_timeout):
                    await link.wait_room()
            except TimeoutError:
                raise self._no_ack(message) from None
        packet_id = link.allocate_id()
        packet = self._encode(link, message, packet_id)
        future: asyncio.Future[int] = link.loop.create_future()
        link.pending[packet_id] = (future, link.loop.time() + self._ack_timeout)
        link.send(packet)
        reason = await future
        if reason == NO_ACK:
            raise self._no_ack(message)
        if reason == NOT_AUTHORIZED:
            raise AccessDeniedError(
                f"the broker denied the publish to {message.topic!r}: {reason_text(reason)}"
            )
        if reason >= REFUSED:
            raise ProtocolError(
                f"the broker refused the publish to {message.topic!r}: {reason_text(reason)}"
            )
        return reason != NO_MATCHING_SUBSCRIBERS

    @staticmethod
    def _encode(link: Link, message: Message, packet_id: int) -> bytes:
        if message.qos > link.maximum_qos:
            raise ProtocolError(
                f"cannot publish to {message.topic!r}: the broker accepts QoS up to "
                f"{link.maximum_qos}"
            )
        packet = encode_publish(message, packet_id)
        if len(packet) > link.maximum_packet_size:
            raise ProtocolError(
                f"cannot publish to {message.topic!r}: {len(packet)} bytes exceed the "
                f"broker's maximum packet size of {link.maximum_packet_size}"
            )
        return packet

    @staticmethod
    def _no_ack(message: Message) -> ConnectionLostError:
        return ConnectionLostError(
            f"publish to {message.topic!r}: no acknowledgement from the broker"
        )

    async def ack(self, message: Message) -> None:
        """Send the PUBACK of a handled QoS 1 message, if its connection is still this one."""
        link = self._link
        if (
            message.qos == 0
            or link is None
            or link.lost is not None
            or message.generation != self._generation
        ):
            return
        link.send(encode_puback(message.mid))

    async def messages(self) -> AsyncIterator[Message]:
        """Yield inbound messages until the connection drops.

        Raises:
            ConnectionLostError: The connection dropped (or was closed).
            SessionTakenOverError: The broker said another client took this client id.
        """
        link = self._require()
        inbox = link.inbox
        while True:
            if link.lost is not None:
                if self._link is link:
                    self._link = None
                raise link.lost_error()
            if inbox:
                yield inbox.popleft()
            else:
                await link.wait_inbox()
