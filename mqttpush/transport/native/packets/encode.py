"""Encoders of the packets a QoS 0/1 client sends.

The packets are CONNECT, PUBLISH, PUBACK, SUBSCRIBE, PINGREQ and DISCONNECT. A value
that MQTT cannot carry, or that a broker would refuse (and disconnect for), raises
:class:`~mqttpush.errors.PacketRefusedError` here, before anything is sent.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from mqttpush.errors import PacketRefusedError
from mqttpush.transport.limits import check_filter
from mqttpush.transport.native.packets.fields import (
    binary as _binary,
)
from mqttpush.transport.native.packets.fields import (
    encode_publish_properties,
)
from mqttpush.transport.native.packets.fields import (
    string as _string,
)
from mqttpush.transport.native.packets.properties import (
    MAXIMUM_PACKET_SIZE,
    RECEIVE_MAXIMUM,
    SESSION_EXPIRY,
)
from mqttpush.transport.native.packets.wire import MAX_REMAINING_LENGTH, U16, U32, encode_varint

if TYPE_CHECKING:
    from mqttpush.transport.base import Message

__all__ = [
    "encode_connect",
    "encode_disconnect",
    "encode_pingreq",
    "encode_puback",
    "encode_publish",
    "encode_subscribe",
]

_MAX_PACKET_ID = 65_535

_PUBACK_OK = struct.Struct(">BBH")  # type, remaining length 2, packet id
_PUBACK_REASON = struct.Struct(">BBHBB")  # ... reason code, property length 0

_PINGREQ = b"\xc0\x00"
_PROTOCOL = b"\x00\x04MQTT\x05"


def _fixed_header(first: int, remaining: int) -> bytes:
    if remaining > MAX_REMAINING_LENGTH:
        raise PacketRefusedError(
            f"packet of {remaining} bytes exceeds MQTT's largest {MAX_REMAINING_LENGTH}"
        )
    return bytes((first,)) + encode_varint(remaining)


def _check_packet_id(packet_id: int) -> None:
    if not 1 <= packet_id <= _MAX_PACKET_ID:
        raise PacketRefusedError(f"packet id {packet_id} is outside 1..{_MAX_PACKET_ID}")


def encode_connect(
    client_id: str,
    *,
    keepalive: int,
    clean_start: bool = True,
    username: str | None = None,
    password: str | bytes | None = None,
    session_expiry: int | None = None,
    receive_maximum: int | None = None,
    maximum_packet_size: int | None = None,
    will: Message | None = None,
) -> bytes:
    """Encode a CONNECT packet (MQTT 5).

    Args:
        client_id: The client identifier.
        keepalive: Keep alive in seconds (0 to 65,535).
        clean_start: Start a new session instead of resuming a stored one.
        username: Optional user name.
        password: Optional password (a string is sent as UTF-8).
        session_expiry: Session Expiry Interval property, in seconds.
        receive_maximum: Receive Maximum property: QoS 1 messages the broker may send
            before they are acknowledged.
        maximum_packet_size: Maximum Packet Size property: the largest packet the
            broker may send, in bytes.
        will: The Will message the broker publishes if the connection ends without a
            DISCONNECT (its topic, payload, QoS, retain flag, content type, expiry and
            user properties).

    Raises:
        PacketRefusedError: A value that MQTT cannot carry.
    """
    flags = 0x02 if clean_start else 0
    payload = [_string(client_id, "client id")]
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload.append(_will(will))
    if username is not None:
        flags |= 0x80
        payload.append(_string(username, "user name"))
    if password is not None:
        flags |= 0x40
        raw = password.encode() if isinstance(password, str) else password
        payload.append(_binary(raw, "password"))
    props = bytearray()
    try:
        if session_expiry is not None:
            props += bytes((SESSION_EXPIRY,)) + U32.pack(session_expiry)
        if receive_maximum is not None:
            if receive_maximum == 0:
                raise PacketRefusedError("Receive Maximum must not be 0")
            props += bytes((RECEIVE_MAXIMUM,)) + U16.pack(receive_maximum)
        if maximum_packet_size is not None:
            if maximum_packet_size == 0:
                raise PacketRefusedError("Maximum Packet Size must not be 0")
            props += bytes((MAXIMUM_PACKET_SIZE,)) + U32.pack(maximum_packet_size)
        header = _PROTOCOL + bytes((flags,)) + U16.pack(keepalive)
    except struct.error as exc:
        raise PacketRefusedError(f"CONNECT value out of range: {exc}") from None
    body = header + encode_varint(len(props)) + props + b"".join(payload)
    return _fixed_header(0x10, len(body)) + body


def _will(will: Message) -> bytes:
    """The Will properties, topic and payload of a CONNECT."""
    if will.qos not in (0, 1) or not will.topic or "+" in will.topic or "#" in will.topic:
        raise PacketRefusedError(f"cannot use {will.topic!r} (QoS {will.qos}) as a Will message")
    props = []
    if will.content_type is not None:
        props.append(b"\x03" + _string(will.content_type, "will content type"))
    if will.message_expiry is not None:
        props.append(b"\x02" + U32.pack(will.message_expiry))
    for key, value in will.user_properties:
        props.append(b"\x26" + _string(key, "user property name") + _string(value, "user property"))
    prop_bytes = b"".join(props)
    return b"".join((
        encode_varint(len(prop_bytes)), prop_bytes,
        _string(will.topic, "will topic"), _binary(will.payload, "will payload"),
    ))  # fmt: skip


def encode_publish(message: Message, packet_id: int = 0, *, dup: bool = False) -> bytes:
    """Encode ``message`` as a PUBLISH packet with its MQTT 5 properties.

    Args:
        message: Topic, payload, QoS (0 or 1), retain flag and properties.
        packet_id: The packet id (1..65,535); required for QoS 1, ignored for QoS 0.
        dup: The DUP flag, for a QoS 1 message sent again.

    Raises:
        PacketRefusedError: The message cannot be published: an empty topic or one with a
            wildcard, a string over 65,535 bytes or with a control character (which
            brokers refuse), a payload that is not bytes, QoS other than 0 or 1, a value
            out of range.
    """
    topic = message.topic
    if not topic or "+" in topic or "#" in topic:
        raise PacketRefusedError(
            f"cannot publish to {topic!r}: a topic must be set, without wildcards"
        )
    payload = message.payload
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise PacketRefusedError(
            f"cannot publish to {topic!r}: the payload must be bytes, not {type(payload).__name__}"
        )
    qos = message.qos
    first = 0x30
    if qos:
        if qos != 1:
            raise PacketRefusedError(f"cannot publish to {topic!r}: QoS {qos} is not supported")
        _check_packet_id(packet_id)
        variable = _string(topic, "topic") + U16.pack(packet_id)
        first = 0x3A if dup else 0x32
    else:
        variable = _string(topic, "topic")
    if message.retain:
        first |= 0x01
    prop_bytes = encode_publish_properties(message)
    prop_length = encode_varint(len(prop_bytes))
    remaining = len(variable) + len(prop_length) + len(prop_bytes) + len(payload)
    if remaining > MAX_REMAINING_LENGTH:
        raise PacketRefusedError(
            f"cannot publish to {topic!r}: {remaining} bytes exceed MQTT's largest packet"
        )
    return b"".join(
        (bytes((first,)), encode_varint(remaining), variable, prop_length, prop_bytes, payload)
    )


def encode_puback(packet_id: int, reason_code: int = 0) -> bytes:
    """Encode a PUBACK; the reason code and properties are left out on success (0)."""
    _check_packet_id(packet_id)
    if reason_code == 0:
        return _PUBACK_OK.pack(0x40, 2, packet_id)
    return _PUBACK_REASON.pack(0x40, 4, packet_id, reason_code, 0)


def encode_subscribe(packet_id: int, topic_filter: str, qos: int = 1) -> bytes:
    """Encode a SUBSCRIBE of one filter at ``qos``, without properties.

    Raises:
        PacketRefusedError: A filter :func:`check_filter` refuses, one over 65,535 bytes
            or with a control character, or QoS other than 0, 1 or 2.
    """
    _check_packet_id(packet_id)
    check_filter(topic_filter)
    if qos not in (0, 1, 2):
        raise PacketRefusedError(f"cannot subscribe to {topic_filter!r}: QoS {qos} does not exist")
    body = U16.pack(packet_id) + b"\x00" + _string(topic_filter, "topic filter") + bytes((qos,))
    return _fixed_header(0x82, len(body)) + body


def encode_pingreq() -> bytes:
    """Encode a PINGREQ."""
    return _PINGREQ


def encode_disconnect(reason_code: int = 0) -> bytes:
    """Encode a DISCONNECT; reason 0 (normal disconnection) takes the two-byte form."""
    if reason_code == 0:
        return b"\xe0\x00"
    return bytes((0xE0, 2, reason_code, 0))
