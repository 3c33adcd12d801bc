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

from mqttpush.errors import ProtocolError
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
    USER_PROPERTY,
    properties_end,
    read_binary,
    read_string,
    skip_property,
)
from mqttpush.transport.native.packets.wire import U32

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
    """

    session_present: bool
    reason_code: int
    receive_maximum: int = 65_535
    maximum_qos: int = 2
    reason_string: str | None = None
    assigned_client_id: str | None = None
    server_keep_alive: int | None = None
    maximum_packet_size: int | None = None


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


def decode_connack(body: Buffer) -> ConnAck:
    """Decode the body of a CONNACK.

    Raises:
        ProtocolError: It is malformed.
    """
    try:
        flags, reason = body[0], body[1]
        if flags & 0xFE:
            raise ProtocolError(f"CONNACK flags {flags:#04x} set reserved bits")
        values: dict[str, object] = {}
        if len(body) > _ID_SIZE:  # MQTT 3 brokers stop after the reason code
            pos, end = properties_end(body, 2)
            while pos < end:
                ident = body[pos]
                pos += 1
                if ident == RECEIVE_MAXIMUM:
                    values["receive_maximum"] = body[pos] << 8 | body[pos + 1]
                    if not values["receive_maximum"]:
                        raise ProtocolError("CONNACK Receive Maximum is 0")
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
                pos = skip_property(body, pos, ident)
            if pos != end:
                raise ProtocolError("CONNACK properties do not end where their length says")
        return ConnAck(bool(flags & 1), reason, **values)  # type: ignore[arg-type]  # keys above
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"malformed CONNACK: {exc}") from None


def decode_publish(  # noqa: PLR0912 - one branch per property, kept flat for speed
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
            raise ProtocolError("topic runs past the end of the PUBLISH")
        topic = str(body[2:pos], "utf-8")
        if not topic:
            raise ProtocolError("PUBLISH without a topic (topic aliases were not allowed)")
        mid = 0
        if qos:
            if qos == _QOS_INVALID:
                raise ProtocolError("PUBLISH with QoS 3")
            mid = body[pos] << 8 | body[pos + 1]
            pos += 2
        content_type = response_topic = None
        correlation = None
        expiry = None
        user: list[tuple[str, str]] = []
        length = body[pos]
        if length == 0:  # the common case: no properties
            pos += 1
        else:
            pos, end = properties_end(body, pos)
            while pos < end:
                ident = body[pos]
                pos += 1
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
                else:
                    pos = skip_property(body, pos, ident)
            if pos != end:
                raise ProtocolError("PUBLISH properties do not end where their length says")
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"malformed PUBLISH: {exc}") from None
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
        raise ProtocolError(f"malformed PUBACK of {size} bytes")
    if size > _ID_SIZE + 1:  # properties (Reason String, User Property): checked, not used
        try:
            end = properties_end(body, 3)[1]
        except _DECODE_ERRORS as exc:
            raise ProtocolError(f"malformed PUBACK: {exc}") from None
        if end != size:
            raise ProtocolError("PUBACK properties do not end where their length says")
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
        raise ProtocolError(f"malformed SUBACK: {exc}") from None
    codes = tuple(body[pos:])
    if not codes:
        raise ProtocolError("SUBACK without a reason code")
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
    text = None
    try:
        pos, end = properties_end(body, 1)
        while pos < end:
            ident = body[pos]
            pos += 1
            if ident == REASON_STRING:
                text, pos = read_string(body, pos)
            else:
                pos = skip_property(body, pos, ident)
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"malformed DISCONNECT: {exc}") from None
    if pos != end:
        raise ProtocolError("DISCONNECT properties do not end where their length says")
    return Disconnect(reason, text)
