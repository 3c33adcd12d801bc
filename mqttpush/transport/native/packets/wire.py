"""What every part of the codec shares: packet types, limits, and variable byte integers."""

from __future__ import annotations

import struct

from mqttpush.errors import ProtocolError

__all__ = [
    "CONNACK",
    "CONTINUATION",
    "DISCONNECT",
    "MAX_REMAINING_LENGTH",
    "PINGRESP",
    "PUBACK",
    "PUBLISH",
    "SUBACK",
    "U16",
    "U32",
    "Buffer",
    "PacketError",
    "decode_varint",
    "encode_varint",
]

# Control packet types (the high nibble of the first byte).
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBACK = 9
PINGRESP = 13
DISCONNECT = 14

MAX_REMAINING_LENGTH = 268_435_455  # the largest four-byte variable byte integer
CONTINUATION = 0x80  # the high bit of a variable byte integer byte: more follow

U16 = struct.Struct(">H")
U32 = struct.Struct(">I")

Buffer = bytes | bytearray | memoryview

MALFORMED = 0x81  # the DISCONNECT reason codes the decoders ask for
PROTOCOL = 0x82


class PacketError(ProtocolError):
    """A received packet MQTT 5 calls malformed or a protocol error.

    Attributes:
        reason_code: What the DISCONNECT that ends the connection says: 0x81 malformed
            packet unless the specification names another (0x82, 0x90, 0x94, 0x95, ...).
    """

    def __init__(self, message: str, reason_code: int = MALFORMED) -> None:
        super().__init__(message)
        self.reason_code = reason_code


def encode_varint(value: int) -> bytes:
    """Encode a variable byte integer (0 to 268,435,455) in one to four bytes.

    Raises:
        ProtocolError: ``value`` is out of range.
    """
    if value < CONTINUATION:  # the common case: a small packet or no properties
        if value < 0:
            raise ProtocolError(f"variable byte integer {value} is negative")
        return bytes((value,))
    if value > MAX_REMAINING_LENGTH:
        raise ProtocolError(f"{value} exceeds MQTT's largest length {MAX_REMAINING_LENGTH}")
    out = bytearray()
    while value >= CONTINUATION:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: Buffer, pos: int) -> tuple[int, int]:
    """Decode the variable byte integer at ``data[pos]``.

    Returns:
        The value and the position after it.

    Raises:
        ProtocolError: It is cut short or longer than four bytes.
    """
    value = 0
    shift = 0
    for i in range(pos, pos + 4):
        if i >= len(data):
            raise ProtocolError("variable byte integer cut short")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < CONTINUATION:
            return value, i + 1
        shift += 7
    raise ProtocolError("variable byte integer longer than four bytes")
