"""Decoders of the messages a QoS 0/1 client receives: PUBLISH, and PUBACK.

Bytes that do not follow MQTT 5 raise :class:`~mqttpush.transport.native.packets.wire.PacketError`
(a :class:`~mqttpush.errors.ProtocolError`) with the DISCONNECT reason code they call
for; properties this client does not use are skipped (see
:mod:`~mqttpush.transport.native.packets.properties`). The broker's other answers are
decoded in :mod:`~mqttpush.transport.native.packets.acks`.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from mqttpush.transport.base import Message
from mqttpush.transport.native.packets.properties import (
    CONTENT_TYPE,
    CORRELATION_DATA,
    MESSAGE_EXPIRY,
    RESPONSE_TOPIC,
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

__all__ = ["decode_puback", "decode_publish"]

_ID_SIZE = 2  # a packet id
_QOS_INVALID = 3
_TOPIC_ALIAS_INVALID = 0x94
_SUBSCRIPTION_ID = 0x0B  # may repeat in a PUBLISH, as User Property may
_DECODE_ERRORS = (IndexError, ValueError, struct.error)  # UnicodeDecodeError is a ValueError

# Content Type, Correlation Data, Response Topic, Message Expiry, User Properties.
_Properties = tuple[str | None, bytes | None, str | None, int | None, tuple[tuple[str, str], ...]]
_NO_PROPERTIES: _Properties = (None, None, None, None, ())
# The property blocks of recent messages, as read: a sender's messages repeat theirs
# (content type, envelope), so each distinct block is checked and decoded once. Blocks
# with Correlation Data (unique per request) are not kept; the size is bounded.
_PROPERTIES_KEPT = 256
_seen_properties: dict[bytes, _Properties] = {}


def decode_publish(first: int, body: Buffer, received_at: float, generation: int) -> Message:
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
        props: _Properties | None
        if body[pos] == 0:  # the common case without properties
            pos += 1
            props = _NO_PROPERTIES
        else:
            start, end = properties_end(body, pos)
            block = bytes(body[start:end])
            props = _seen_properties.get(block)
            if props is None:
                props = _read_properties(body, start, end)
                if props[1] is None:  # Correlation Data differs on every message: not kept
                    if len(_seen_properties) >= _PROPERTIES_KEPT:
                        _seen_properties.clear()
                    _seen_properties[block] = props
            pos = end
    except _DECODE_ERRORS as exc:
        raise PacketError(f"malformed PUBLISH: {exc}") from None
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        _bad_topic(topic)
    content_type, correlation, response_topic, expiry, user = props
    return Message(
        topic,
        bytes(body[pos:]),
        qos,
        bool(first & 1),
        content_type,
        correlation,
        response_topic,
        expiry,
        user,
        received_at,
        mid,
        generation,
    )


def _read_properties(body: Buffer, pos: int, end: int) -> _Properties:  # noqa: PLR0912 - flat for speed
    """Read the PUBLISH properties from ``pos`` to ``end`` (raises if they break MQTT 5)."""
    content_type = response_topic = None
    correlation = None
    expiry = None
    user: list[tuple[str, str]] = []
    seen = 0  # a bit per property identifier, for the ones that may not repeat
    while pos < end:
        ident = body[pos]
        pos += 1
        if ident == USER_PROPERTY:  # the common case first: it may repeat
            # The two strings of the pair read here, not by read_string: 2 us less per
            # message of four user properties, and an RPC message's are new each time.
            split = pos + 2 + (body[pos] << 8 | body[pos + 1])
            after = split + 2 + (body[split] << 8 | body[split + 1])
            if after > end:
                raise PacketError("user property runs past the end of its properties")
            key = str(body[pos + 2 : split], "utf-8")
            value = str(body[split + 2 : after], "utf-8")
            if "\x00" in key or "\x00" in value:  # [MQTT-1.5.4-2]: a malformed packet
                raise PacketError(f"user property {key[:80]!r} contains U+0000")
            user.append((key, value))
            pos = after
            continue
        bit = 1 << ident
        if seen & bit:
            once(seen, ident, "PUBLISH")  # raises: the property came twice
        seen |= bit
        if ident == CORRELATION_DATA:
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
            if ident == _SUBSCRIPTION_ID:
                seen ^= bit  # may repeat too
            pos = skip_property(body, pos, ident)
    if pos != end:
        raise PacketError("PUBLISH properties do not end where their length says")
    return content_type, correlation, response_topic, expiry, tuple(user)


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
