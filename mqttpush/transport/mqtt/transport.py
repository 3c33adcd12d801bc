"""The :class:`MqttTransport`: the transport interface on aiomqtt.

Every aiomqtt/paho error is translated here, and only here, into the mqttpush
exception tree; reason codes are read with the vocabulary both stacks share.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from typing import TYPE_CHECKING

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttpush.errors import (
    AuthenticationError,
    BrokerUnavailableError,
    ConnectionLostError,
    PacketRefusedError,
    SessionTakenOverError,
    TlsError,
)
from mqttpush.transport.ackorder import AckOrder
from mqttpush.transport.broker import BrokerTransport
from mqttpush.transport.gate import ReadGate
from mqttpush.transport.limits import check_filter
from mqttpush.transport.mqtt.convert import code_of, from_aiomqtt, to_properties
from mqttpush.transport.mqtt.hooks import inflight_limit, install_hooks
from mqttpush.transport.reasons import (
    CREDENTIALS_REFUSED,
    NO_MATCHING_SUBSCRIBERS,
    SESSION_TAKEN_OVER,
    check_refusal,
)
from mqttpush.transport.tls import tls_context

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.settings import BrokerSettings
    from mqttpush.transport.base import Message

__all__ = ["MqttTransport"]

# Without TCP_NODELAY a QoS 1 request/response round trip waits on Nagle's algorithm
# and delayed ACKs: ~88 ms instead of ~0.4 ms on loopback.
_SOCKET_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def _will(will: Message) -> aiomqtt.Will:
    props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
    if will.content_type is not None:
        props.ContentType = will.content_type
    if will.message_expiry is not None:
        props.MessageExpiryInterval = will.message_expiry
    if will.user_properties:
        props.UserProperty = list(will.user_properties)
    return aiomqtt.Will(will.topic, will.payload, will.qos, will.retain, props)


class MqttTransport(BrokerTransport):
    """An MQTT 5 connection to Mosquitto (or any MQTT 5 broker) through aiomqtt."""

    def __init__(self, settings: BrokerSettings) -> None:
        super().__init__(settings)
        self._client: aiomqtt.Client | None = None
        self._pubacks: dict[int, asyncio.Future[int]] = {}
        self._gate: ReadGate | None = None
        self._acks = AckOrder()
        self._bulk_slots = asyncio.Semaphore(18)
        self._server_reference: str | None = None
        self._disconnect_code: int | None = None

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
        return self._client is not None

    async def connect(self) -> None:
        """Connect with MQTT 5 and TCP_NODELAY (and TLS when configured).

        Raises:
            BrokerUnavailableError: The broker is unreachable or refused the connection.
            ConfigurationError: The TLS files cannot be loaded.
        """
        s = self._settings
        connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect_props.ReceiveMaximum = s.receive_maximum
        connect_props.MaximumPacketSize = s.maximum_packet_size
        if self.persistent:
            connect_props.SessionExpiryInterval = s.session_expiry
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.secret(),
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            keepalive=s.keepalive,
            timeout=s.connect_timeout,
            socket_options=_SOCKET_OPTIONS,
            tls_context=tls_context(s),
            clean_start=not self.persistent,
            properties=connect_props,
            will=None if self.will is None else _will(self.will),
        )
        self._gate = ReadGate(asyncio.get_running_loop(), s.inbox_max_messages, s.inbox_max_bytes)
        self._server_reference = self._disconnect_code = None
        install_hooks(client, self._gate, self)
        # aiomqtt warns past 10 unacknowledged publishes; a QoS 1 window is normal here.
        client.pending_calls_threshold = 1_000_000
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise self._connect_error(exc) from exc
        self._client = client
        self._acks = AckOrder()
        limit = inflight_limit(client)
        self._bulk_slots = asyncio.Semaphore(max(limit - max(limit // 10, 1), 1))
        self._generation += 1

    def _connect_error(self, exc: aiomqtt.MqttError) -> BrokerUnavailableError:
        """The error of a failed connect: credentials and TLS failures told apart."""
        where = f"the MQTT broker at {self.where}"
        code = code_of(getattr(exc, "rc", None)) or None
        if code in CREDENTIALS_REFUSED:
            user = f"user {self._settings.username!r}" if self._settings.username else "anonymous"
            return AuthenticationError(
                f"cannot connect to {where}: it refused {user}: {exc}", reason_code=code
            )
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLError):
            return TlsError(f"cannot connect to {where}: TLS handshake failed: {cause}")
        return BrokerUnavailableError(
            f"cannot connect to {where}: {exc}",
            reason_code=code if code is not None and code >= 0x80 else None,  # noqa: PLR2004
        )

    def connected(self, session_present: bool) -> None:  # noqa: FBT001 - paho's flag
        """Paho heard the CONNACK: keep its session-present flag."""
        self._session_present = session_present

    def acknowledged(self, mid: int, reason_code: int) -> None:
        """Paho heard the PUBACK of ``mid``: hand its reason code to the waiting publish."""
        future = self._pubacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(reason_code)

    def disconnected(self, reason_code: int | None, server_reference: str | None) -> None:
        """Paho saw the connection end: keep the broker's reason code and Server Reference."""
        self._disconnect_code = reason_code
        self._server_reference = server_reference

    async def ack(self, message: Message) -> None:
        """Send the PUBACK of a handled QoS 1 message, if its connection is still this one."""
        client = self._client
        if message.qos == 0 or client is None or message.generation != self._generation:
            return
        for packet_id in self._acks.handled(message.mid):  # in receive order [MQTT-4.6.0-2]
            client._client.ack(packet_id, 1)

    def _fail_pubacks(self, reason: str) -> None:
        pending, self._pubacks = self._pubacks, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionLostError(reason))

    async def disconnect(self) -> None:
        """Disconnect; errors while closing an already broken connection are ignored."""
        self._fail_pubacks(f"disconnected from the MQTT broker at {self.where}")
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):  # gone either way, as was asked
            await client.__aexit__(None, None, None)

    def _require(self) -> aiomqtt.Client:
        if self._client is None:
            raise ConnectionLostError(f"not connected to the MQTT broker at {self.where}")
        return self._client

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe and wait for SUBACK.

        Raises:
            ConnectionLostError: Not connected, or the connection failed.
            PacketRefusedError: The filter breaks MQTT (a misplaced wildcard, ...).
            BrokerRefusedError: The broker refused it (``AccessDeniedError`` for 0x87).
        """
        check_filter(topic_filter)
        try:
            granted = await self._require().subscribe(topic_filter, qos)
        except aiomqtt.MqttError as exc:
            raise ConnectionLostError(f"subscribe to {topic_filter!r} failed: {exc}") from exc
        except ValueError as exc:  # paho refuses to encode it
            raise PacketRefusedError(f"cannot subscribe to {topic_filter!r}: {exc}") from exc
        for code in granted or ():
            check_refusal(code_of(code) or 0, f"the subscription to {topic_filter!r}")

    async def publish(self, message: Message) -> bool:
        """Publish and, for QoS 1/2, wait for the broker's acknowledgement.

        Returns:
            False when the broker acknowledged with "no matching subscribers"
            (reason code 16): nobody, not even a stored session, will get it.
        """
        if message.bulk and message.qos:
            # At most paho's in-flight window less a tenth: paho queues what is over its
            # window in order, so control messages wait behind no more than that.
            async with self._bulk_slots:
                return await self._publish(message)
        return await self._publish(message)

    async def _publish(self, message: Message) -> bool:
        paho = self._require()._client  # the paho client, for the PUBACK reason code
        try:
            info = paho.publish(
                message.topic, message.payload, message.qos, message.retain, to_properties(message)
            )
        except (ValueError, TypeError, struct.error) as exc:  # paho refuses to encode it
            raise PacketRefusedError(f"cannot publish to {message.topic!r}: {exc}") from exc
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionLostError(f"publish to {message.topic!r} failed: rc={info.rc}")
        if message.qos == 0:
            return True
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pubacks[info.mid] = future
        try:
            async with asyncio.timeout(self._settings.connect_timeout * 2):
                reason = await future
        except TimeoutError:
            raise ConnectionLostError(
                f"publish to {message.topic!r}: no acknowledgement from the broker"
            ) from None
        finally:
            self._pubacks.pop(info.mid, None)
        check_refusal(reason, f"the publish to {message.topic!r}")
        return reason != NO_MATCHING_SUBSCRIBERS

    def buffered(self) -> int:
        """Messages paho has received and not yet taken."""
        return 0 if self._gate is None else self._gate.count

    async def messages(self) -> AsyncIterator[Message]:
        """Yield inbound messages until the connection drops."""
        client = self._require()
        gate = self._gate
        try:
            generation = self._generation
            async for raw in client.messages:
                message = from_aiomqtt(raw, generation)
                if message.qos:
                    self._acks.received(message.mid)
                if gate is not None:
                    gate.take(len(message.payload))
                yield message
        except aiomqtt.MqttError as exc:
            self._fail_pubacks(f"connection to the MQTT broker at {self.where} lost: {exc}")
            if self._client is client:
                self._client = None
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)  # release the broken client's resources
            code = self._disconnect_code  # None: closed without the broker's DISCONNECT
            if code == SESSION_TAKEN_OVER:
                raise SessionTakenOverError(
                    f"another client connected to {self.where} with client id "
                    f"{self._client_id!r} and took over its session",
                    reason_code=code,
                ) from exc
            raise ConnectionLostError(
                f"connection to the MQTT broker at {self.where} lost: {exc}",
                reason_code=code,
                server_reference=self._server_reference,
            ) from exc
