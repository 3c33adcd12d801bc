"""Decoders of the packets a QoS 0/1 client receives, and the types they decode into.

The packets are CONNACK, PUBLISH, PUBACK, SUBACK and DISCONNECT (a PINGRESP has no
body). Bytes that do not follow MQTT 5 raise :class:`~mqttpush.errors.ProtocolError`;
properties this client does not use are skipped (see
:mod:`~mqttpush.transport.native.packets.properties`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqttpush.transport.base import Message
from mqttpush.transport.native.packets.properties import (
    ASSIGNED_CLIENT_ID,
    CONTENT_TYPE,
    CORRELATION_DATA,
    MAXIMUM_PACKET_SIZE,
    MAXIMUM_QOS,
    MESSAGE_EXPIRY,
    REASON_STRING,
    RECEIVE_MAXIMUM,
    RESPONSE_TOPIC,
    SERVER_KEEP_ALIVE,
    SERVER_REFERENCE,
    TOPIC_ALIAS,
    USER_PROPERTY,
    once,
    properties_end,
    read_binary,
    read_string,
    skip_property,
)
from mqttpush.transport.native.packets.wire import PROTOCOL, U32, PacketError

if TYPE_CHECKING:
    from mqttpush.transport.native.packets.wire import Buffer

__all__ = [
    "ConnAck",
    "Disconnect",
    "SubAck",
    "decode_connack",
    "decode_disconnect",
    "decode_puback",
    "decode_publish",
    "decode_suback",
]

_ID_SIZE = 2  # a packet id, or a two-byte length
_QOS_INVALID = 3
_TOPIC_ALIAS_INVALID = 0x94
_SUBSCRIPTION_ID = 0x0B
_WILDCARDS_AVAILABLE = 0x28
_SHARED_AVAILABLE = 0x2A  # may repeat in a PUBLISH, as User Property may
_DECODE_ERRORS = (IndexError, ValueError, struct.error)  # UnicodeDecodeError is a ValueError


@dataclass(frozen=True, slots=True)
class ConnAck:
    """A decoded CONNACK.

    Attributes:
        session_present: The broker resumed a stored session.
        reason_code: 0 on success, 0x80 and above for a refusal.
        receive_maximum: QoS 1 publishes the broker accepts unacknowledged.
        maximum_qos: The highest QoS the broker accepts.
        reason_string: The broker's explanation, if any.
        assigned_client_id: The client id the broker chose, if it chose one.
        server_keep_alive: The keep alive the broker wants instead of the client's.
        maximum_packet_size: The largest packet the broker accepts, if it limits it.
        server_reference: Another server to use (with a refusal such as 0x9C), if any.
        wildcards: Whether the broker accepts wildcard subscriptions.
        shared: Whether the broker accepts shared subscriptions.
    """

    session_present: bool
    reason_code: int
    receive_maximum: int = 65_535
    maximum_qos: int = 2
    reason_string: str | None = None
    assigned_client_id: str | None = None
    server_keep_alive: int | None = None
    maximum_packet_size: int | None = None
    server_reference: str | None = None
    wildcards: bool = True
    shared: bool = True


@dataclass(frozen=True, slots=True)
class SubAck:
    """A decoded SUBACK: one reason code per filter (the granted QoS, or 0x80 and above)."""

    packet_id: int
    reason_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """A DISCONNECT sent by the broker."""

    reason_code: int
    reason_string: str | None = None
    server_reference: str | None = None


def decode_connack(body: Buffer) -> ConnAck:  # noqa: PLR0912 - one branch per property
    """Decode the body of a CONNACK.

    Raises:
        ProtocolError: It is malformed.
    """
    try:
        flags, reason = body[0], body[1]
        if flags & 0xFE:
            raise PacketError(f"CONNACK flags {flags:#04x} set reserved bits")
        values: dict[str, object] = {}
        if len(body) > _ID_SIZE:  # MQTT 3 brokers stop after the reason code
            pos, end = properties_end(body, 2)
            seen = 0
            while pos < end:
                ident = body[pos]
                pos += 1
                seen = once(seen, ident, "CONNACK")
                if ident == RECEIVE_MAXIMUM:
                    values["receive_maximum"] = body[pos] << 8 | body[pos + 1]
                    if not values["receive_maximum"]:
                        raise PacketError("CONNACK Receive Maximum is 0", PROTOCOL)
                elif ident == MAXIMUM_QOS:
                    values["maximum_qos"] = body[pos]
                elif ident == SERVER_KEEP_ALIVE:
                    values["server_keep_alive"] = body[pos] << 8 | body[pos + 1]
                elif ident == MAXIMUM_PACKET_SIZE:
                    values["maximum_packet_size"] = U32.unpack_from(body, pos)[0]
                elif ident == REASON_STRING:
                    values["reason_string"], pos = read_string(body, pos)
                    continue
                elif ident == ASSIGNED_CLIENT_ID:
                    values["assigned_client_id"], pos = read_string(body, pos)
                    continue
                elif ident == SERVER_REFERENCE:
                    values["server_reference"], pos = read_string(body, pos)
                    continue
                elif ident == _WILDCARDS_AVAILABLE:
                    values["wildcards"] = bool(body[pos])
                elif ident == _SHARED_AVAILABLE:
                    values["shared"] = bool(body[pos])
                pos = skip_property(body, pos, ident)
            if pos != end:
                raise PacketError("CONNACK properties do not end where their length says")
        return ConnAck(bool(flags & 1), reason, **values)  # type: ignore[arg-type]  # keys above
    except _DECODE_ERRORS as exc:
        raise PacketError(f"malformed CONNACK: {exc}") from None


def decode_publish(  # noqa: PLR0912, PLR0915 - one branch per property, kept flat for speed
    first: int, body: Buffer, received_at: float, generation: int
) -> Message:
    """Decode a PUBLISH into a :class:`Message`.

    Args:
        first: The packet's first byte (type and DUP/QoS/RETAIN flags).
        body: The packet after its fixed header.
        received_at: ``time.monotonic()`` when it arrived.
        generation: The transport's connection count, for acknowledging it.

    Raises:
        ProtocolError: It is malformed.
    """
    qos = (first >> 1) & 3
    try:
        pos = 2 + (body[0] << 8 | body[1])
        if pos > len(body):
            raise PacketError("topic runs past the end of the PUBLISH")
        topic = str(body[2:pos], "utf-8")
        mid = 0
        if qos:
            if qos == _QOS_INVALID:
                raise PacketError("PUBLISH with QoS 3")
            mid = body[pos] << 8 | body[pos + 1]
            pos += 2
            if not mid:
                raise PacketError("QoS 1 PUBLISH with packet id 0", PROTOCOL)
        elif first & 0x08:
            raise PacketError("QoS 0 PUBLISH with the DUP flag set")
        content_type = response_topic = None
        correlation = None
        expiry = None
        user: list[tuple[str, str]] = []
        length = body[pos]
        if length == 0:  # the common case: no properties
            pos += 1
        else:
            pos, end = properties_end(body, pos)
            seen = 0
            while pos < end:
                ident = body[pos]
                pos += 1
                if ident != USER_PROPERTY and ident != _SUBSCRIPTION_ID:  # noqa: PLR1714
                    seen = once(seen, ident, "PUBLISH")
                if ident == USER_PROPERTY:
                    key, pos = read_string(body, pos)
                    value, pos = read_string(body, pos)
                    user.append((key, value))
                elif ident == CORRELATION_DATA:
                    correlation, pos = read_binary(body, pos)
                elif ident == RESPONSE_TOPIC:
                    response_topic, pos = read_string(body, pos)
                elif ident == CONTENT_TYPE:
                    content_type, pos = read_string(body, pos)
                elif ident == MESSAGE_EXPIRY:
                    expiry = U32.unpack_from(body, pos)[0]
                    pos += 4
                elif ident == TOPIC_ALIAS:
                    raise PacketError(
                        "PUBLISH with a Topic Alias, which this client never allows",
                        _TOPIC_ALIAS_INVALID,
                    )
                else:
                    pos = skip_property(body, pos, ident)
            if pos != end:
                raise PacketError("PUBLISH properties do not end where their length says")
    except _DECODE_ERRORS as exc:
        raise PacketError(f"malformed PUBLISH: {exc}") from None
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        _bad_topic(topic)
    return Message(
        topic,
        bytes(body[pos:]),
        qos,
        bool(first & 1),
        content_type,
        correlation,
        response_topic,
        expiry,
        tuple(user),
        received_at,
        mid,
        generation,
    )


def _bad_topic(topic: str) -> None:
    """Raise the error a PUBLISH topic name that is not allowed calls for."""
    if not topic:  # an alias would be needed, and none was allowed
        raise PacketError("PUBLISH without a topic name (no Topic Alias is allowed)", PROTOCOL)
    if "\x00" in topic:
        raise PacketError(f"PUBLISH topic name {topic[:80]!r} contains U+0000")
    raise PacketError(f"PUBLISH topic name {topic[:80]!r} contains a wildcard", PROTOCOL)


def decode_puback(body: Buffer) -> tuple[int, int]:
    """Decode a PUBACK.

    Returns:
        The packet id and the reason code (0 when the broker left it out).

    Raises:
        ProtocolError: It is shorter than a packet id.
    """
    size = len(body)
    if size == _ID_SIZE:
        return body[0] << 8 | body[1], 0
    if size < _ID_SIZE:
        raise PacketError(f"malformed PUBACK of {size} bytes")
    if size > _ID_SIZE + 1:  # properties (Reason String, User Property): checked, not used
        try:
            end = properties_end(body, 3)[1]
        except _DECODE_ERRORS as exc:
            raise PacketError(f"malformed PUBACK: {exc}") from None
        if end != size:
            raise PacketError("PUBACK properties do not end where their length says")
    return body[0] << 8 | body[1], body[2]


def decode_suback(body: Buffer) -> SubAck:
    """Decode a SUBACK.

    Raises:
        ProtocolError: It is malformed or carries no reason code.
    """
    try:
        packet_id = body[0] << 8 | body[1]
        pos = properties_end(body, 2)[1]
    except _DECODE_ERRORS as exc:
        raise PacketError(f"malformed SUBACK: {exc}") from None
    codes = tuple(body[pos:])
    if not codes:
        raise PacketError("SUBACK without a reason code")
    return SubAck(packet_id, codes)


def decode_disconnect(body: Buffer) -> Disconnect:
    """Decode a DISCONNECT from the broker (reason 0 when it has no body).

    Raises:
        ProtocolError: It is malformed.
    """
    if not body:
        return Disconnect(0)
    reason = body[0]
    if len(body) == 1:
        return Disconnect(reason)
    text = reference = None
    try:
        pos, end = properties_end(body, 1)
        seen = 0
        while pos < end:
            ident = body[pos]
            pos += 1
            if ident != USER_PROPERTY:
                seen = once(seen, ident, "DISCONNECT")
            if ident == REASON_STRING:
                text, pos = read_string(body, pos)
            elif ident == SERVER_REFERENCE:
                reference, pos = read_string(body, pos)
            else:
                pos = skip_property(body, pos, ident)
    except _DECODE_ERRORS as exc:
        raise PacketError(f"malformed DISCONNECT: {exc}") from None
    if pos != end:
        raise PacketError("DISCONNECT properties do not end where their length says")
    return Disconnect(reason, text, reference)
