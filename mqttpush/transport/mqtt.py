"""The MQTT 5 transport on aiomqtt: the only module that imports aiomqtt or paho-mqtt.

Every aiomqtt/paho error is translated here into the mqttpush exception tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttpush.errors import (
    AccessDeniedError,
    AuthenticationError,
    BrokerUnavailableError,
    ConnectionLostError,
    ProtocolError,
    SessionTakenOverError,
    TlsError,
)
from mqttpush.transport.base import Message
from mqttpush.transport.broker import BrokerTransport
from mqttpush.transport.tls import tls_context

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.settings import BrokerSettings

__all__ = ["MqttTransport"]

# Without TCP_NODELAY a QoS 1 request/response round trip waits on Nagle's algorithm
# and delayed ACKs: ~88 ms instead of ~0.4 ms on loopback.
_SOCKET_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
_SESSION_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason code
_NO_MATCHING_SUBSCRIBERS = 16  # MQTT 5 PUBACK reason code
_REFUSED = 0x80  # PUBACK reason codes from here on are refusals (not authorized, quota, ...)
_NOT_AUTHORIZED = 0x87
_CREDENTIALS_REFUSED = frozenset({0x86, 0x87, 0x8A, 0x8C})  # CONNACK: who is connecting


def _to_properties(message: Message) -> Properties | None:
    values = (
        ("ContentType", message.content_type),
        ("CorrelationData", message.correlation_data),
        ("ResponseTopic", message.response_topic),
        ("MessageExpiryInterval", message.message_expiry),
        ("UserProperty", list(message.user_properties) or None),
    )
    present = [(name, value) for name, value in values if value is not None]
    if not present:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho is untyped here
    for name, value in present:
        setattr(props, name, value)
    return props


def _from_aiomqtt(raw: aiomqtt.Message, generation: int) -> Message:
    props: Any = raw.properties
    return Message(
        topic=raw.topic.value,
        payload=bytes(raw.payload),
        qos=raw.qos,
        retain=raw.retain,
        content_type=getattr(props, "ContentType", None),
        correlation_data=getattr(props, "CorrelationData", None),
        response_topic=getattr(props, "ResponseTopic", None),
        message_expiry=getattr(props, "MessageExpiryInterval", None),
        user_properties=tuple(getattr(props, "UserProperty", ())),
        received_at=time.monotonic(),
        mid=raw.mid,
        generation=generation,
    )


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
        self._install_paho_hooks(client)
        # aiomqtt warns past 10 unacknowledged publishes; a QoS 1 window is normal here.
        client.pending_calls_threshold = 1_000_000
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise self._connect_error(exc) from exc
        self._client = client
        self._generation += 1

    def _connect_error(self, exc: aiomqtt.MqttError) -> BrokerUnavailableError:
        """The error of a failed connect: credentials and TLS failures told apart."""
        where = f"the MQTT broker at {self.where}"
        rc = getattr(exc, "rc", None)
        code = int(getattr(rc, "value", rc) or 0)
        if code in _CREDENTIALS_REFUSED:
            user = f"user {self._settings.username!r}" if self._settings.username else "anonymous"
            return AuthenticationError(f"cannot connect to {where}: it refused {user}: {exc}")
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLError):
            return TlsError(f"cannot connect to {where}: TLS handshake failed: {cause}")
        return BrokerUnavailableError(f"cannot connect to {where}: {exc}")

    def _install_paho_hooks(self, client: aiomqtt.Client) -> None:
        """Reach the paho client under aiomqtt for what aiomqtt does not expose.

        Manual acknowledgement (PUBACK after handling, so an unhandled message is
        redelivered) and the CONNACK's session-present flag. aiomqtt keeps the paho
        client in ``_client``; this module is the one place that depends on that.
        """
        paho = client._client
        paho.manual_ack_set(True)  # noqa: FBT003 - paho's signature
        aiomqtt_on_connect = paho.on_connect

        def on_connect(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
            flags = args[2]
            self._session_present = bool(getattr(flags, "session_present", False))
            if aiomqtt_on_connect is not None:
                aiomqtt_on_connect(*args)

        paho.on_connect = on_connect
        aiomqtt_on_publish = paho.on_publish

        def on_publish(*args: Any) -> None:  # noqa: ANN401 - paho's callback arguments
            mid, reason = args[2], args[3]
            future = self._pubacks.pop(mid, None)
            if future is not None and not future.done():
                future.set_result(int(getattr(reason, "value", 0) or 0))
            if aiomqtt_on_publish is not None:
                aiomqtt_on_publish(*args)

        paho.on_publish = on_publish

    async def ack(self, message: Message) -> None:
        """Send the PUBACK of a handled QoS 1 message, if its connection is still this one."""
        client = self._client
        if message.qos == 0 or client is None or message.generation != self._generation:
            return
        client._client.ack(message.mid, message.qos)

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
        """Subscribe and wait for SUBACK."""
        try:
            granted = await self._require().subscribe(topic_filter, qos)
        except aiomqtt.MqttError as exc:
            raise ConnectionLostError(f"subscribe to {topic_filter!r} failed: {exc}") from exc
        for code in granted or ():
            value = code if isinstance(code, int) else int(code.value)
            if value == _NOT_AUTHORIZED:
                raise AccessDeniedError(
                    f"the broker denied the subscription to {topic_filter!r}: not authorized"
                )
            if value >= _REFUSED:
                raise ProtocolError(f"the broker refused the subscription to {topic_filter!r}")

    async def publish(self, message: Message) -> bool:
        """Publish and, for QoS 1/2, wait for the broker's acknowledgement.

        Returns:
            False when the broker acknowledged with "no matching subscribers"
            (reason code 16): nobody, not even a stored session, will get it.
        """
        paho = self._require()._client  # the paho client, for the PUBACK reason code
        try:
            info = paho.publish(
                message.topic, message.payload, message.qos, message.retain, _to_properties(message)
            )
        except (ValueError, TypeError, struct.error) as exc:  # paho refuses to encode it
            raise ProtocolError(f"cannot publish to {message.topic!r}: {exc}") from exc
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
        if reason == _NOT_AUTHORIZED:
            raise AccessDeniedError(
                f"the broker denied the publish to {message.topic!r}: not authorized (0x87)"
            )
        if reason >= _REFUSED:
            raise ProtocolError(
                f"the broker refused the publish to {message.topic!r}: reason {reason}"
            )
        return reason != _NO_MATCHING_SUBSCRIBERS

    async def messages(self) -> AsyncIterator[Message]:
        """Yield inbound messages until the connection drops."""
        client = self._require()
        try:
            generation = self._generation
            async for raw in client.messages:
                yield _from_aiomqtt(raw, generation)
        except aiomqtt.MqttError as exc:
            self._fail_pubacks(f"connection to the MQTT broker at {self.where} lost: {exc}")
            if self._client is client:
                self._client = None
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)  # release the broken client's resources
            reason = getattr(exc.__cause__, "rc", None)
            if int(getattr(reason, "value", reason or 0)) == _SESSION_TAKEN_OVER:
                raise SessionTakenOverError(
                    f"another client connected to {self.where} with client id "
                    f"{self._client_id!r} and took over its session"
                ) from exc
            raise ConnectionLostError(
                f"connection to the MQTT broker at {self.where} lost: {exc}"
            ) from exc
