"""MQTT 5 properties: their identifiers, and reading or skipping them by wire type.

Every property MQTT 5 defines has its wire type here, so the decoders skip the ones this
client does not use by their type, and a broker that adds some never breaks parsing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.transport.native.packets.wire import (
    CONTINUATION,
    PROTOCOL,
    PacketError,
    decode_varint,
)

if TYPE_CHECKING:
    from mqttpush.transport.native.packets.wire import Buffer

__all__ = [
    "ASSIGNED_CLIENT_ID",
    "CONTENT_TYPE",
    "CORRELATION_DATA",
    "MAXIMUM_PACKET_SIZE",
    "MAXIMUM_QOS",
    "MESSAGE_EXPIRY",
    "REASON_STRING",
    "RECEIVE_MAXIMUM",
    "RESPONSE_TOPIC",
    "SERVER_KEEP_ALIVE",
    "SERVER_REFERENCE",
    "SESSION_EXPIRY",
    "TOPIC_ALIAS",
    "USER_PROPERTY",
    "once",
    "properties_end",
    "read_binary",
    "read_string",
    "skip_property",
]

# Property identifiers used here.
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27

# Every MQTT 5 property by its wire type, so the unused ones are skipped correctly.
_BYTE, _TWO, _FOUR, _VARINT, _STRING, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES: dict[int, int] = {
    0x01: _BYTE,  # Payload Format Indicator
    0x02: _FOUR,  # Message Expiry Interval
    0x03: _STRING,  # Content Type
    0x08: _STRING,  # Response Topic
    0x09: _BINARY,  # Correlation Data
    0x0B: _VARINT,  # Subscription Identifier
    0x11: _FOUR,  # Session Expiry Interval
    0x12: _STRING,  # Assigned Client Identifier
    0x13: _TWO,  # Server Keep Alive
    0x15: _STRING,  # Authentication Method
    0x16: _BINARY,  # Authentication Data
    0x17: _BYTE,  # Request Problem Information
    0x18: _FOUR,  # Will Delay Interval
    0x19: _BYTE,  # Request Response Information
    0x1A: _STRING,  # Response Information
    0x1C: _STRING,  # Server Reference
    0x1F: _STRING,  # Reason String
    0x21: _TWO,  # Receive Maximum
    0x22: _TWO,  # Topic Alias Maximum
    0x23: _TWO,  # Topic Alias
    0x24: _BYTE,  # Maximum QoS
    0x25: _BYTE,  # Retain Available
    0x26: _PAIR,  # User Property
    0x27: _FOUR,  # Maximum Packet Size
    0x28: _BYTE,  # Wildcard Subscription Available
    0x29: _BYTE,  # Subscription Identifier Available
    0x2A: _BYTE,  # Shared Subscription Available
}


def skip_property(data: Buffer, pos: int, ident: int) -> int:
    """Return the position after the value of property ``ident`` starting at ``pos``."""
    kind = _PROPERTY_TYPES.get(ident)
    if kind is None:
        raise PacketError(f"unknown property identifier {ident:#04x}")
    if kind == _BYTE:
        return pos + 1
    if kind == _TWO:
        return pos + 2
    if kind == _FOUR:
        return pos + 4
    if kind == _VARINT:
        return decode_varint(data, pos)[1]
    if kind == _PAIR:
        pos += 2 + (data[pos] << 8 | data[pos + 1])
    return pos + 2 + (data[pos] << 8 | data[pos + 1])


def read_string(data: Buffer, pos: int) -> tuple[str, int]:
    """Read the UTF-8 string at ``pos``; return it and the position after it."""
    end = pos + 2 + (data[pos] << 8 | data[pos + 1])
    if end > len(data):
        raise PacketError("string runs past the end of its packet")
    text = str(data[pos + 2 : end], "utf-8")
    if "\x00" in text:  # [MQTT-1.5.4-2]: a malformed packet
        raise PacketError(f"string {text[:80]!r} contains U+0000")
    return text, end


def read_binary(data: Buffer, pos: int) -> tuple[bytes, int]:
    """Read the binary data at ``pos``; return it and the position after it."""
    end = pos + 2 + (data[pos] << 8 | data[pos + 1])
    if end > len(data):
        raise PacketError("binary data runs past the end of its packet")
    return bytes(data[pos + 2 : end]), end


def properties_end(data: Buffer, pos: int) -> tuple[int, int]:
    """Read a property length at ``pos``; return (first property, end of properties)."""
    length = data[pos]
    if length < CONTINUATION:  # under 128 bytes: the length in one byte
        pos += 1
    elif data[pos + 1] < CONTINUATION:  # under 16 KiB (an envelope's): in two bytes
        length = (length & 0x7F) | data[pos + 1] << 7
        pos += 2
    else:
        length, pos = decode_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise PacketError("properties run past the end of their packet")
    return pos, end


def once(seen: int, ident: int, packet: str) -> int:
    """Add property ``ident`` to the bit set ``seen``; a second one is a protocol error."""
    bit = 1 << ident
    if seen & bit:
        raise PacketError(f"{packet} carries property {ident:#04x} twice", PROTOCOL)
    return seen | bit
