"""The MQTT 5 packet codec of the native transport: bytes in, packets out, and back; no I/O.

Only the packets a QoS 0/1 client needs are encoded (CONNECT, PUBLISH, PUBACK, SUBSCRIBE,
PINGREQ, DISCONNECT) and decoded (CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP,
DISCONNECT). Properties this client does not use are skipped by their type, so a broker
that adds some never breaks parsing; bytes that do not follow MQTT 5 raise
:class:`~mqttpush.errors.ProtocolError`, and so does a message that cannot be encoded.

Received packets come out of :class:`PacketReader` as (first byte, body) pairs; a body
is a ``memoryview`` into the received chunk, so a packet is never copied to be framed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from mqttpush.errors import ProtocolError
from mqttpush.transport.base import Message

__all__ = [
    "CONNACK",
    "DISCONNECT",
    "MAX_REMAINING_LENGTH",
    "PINGRESP",
    "PUBACK",
    "PUBLISH",
    "SUBACK",
    "ConnAck",
    "Disconnect",
    "PacketReader",
    "SubAck",
    "decode_connack",
    "decode_disconnect",
    "decode_puback",
    "decode_publish",
    "decode_suback",
    "decode_varint",
    "encode_connect",
    "encode_disconnect",
    "encode_pingreq",
    "encode_puback",
    "encode_publish",
    "encode_subscribe",
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
_MAX_STRING = 65_535
_MAX_PACKET_ID = 65_535
_CONTINUATION = 0x80  # the high bit of a variable byte integer byte: more follow
_ID_SIZE = 2  # a packet id, or a two-byte length
_QOS_INVALID = 3

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_PUBACK_OK = struct.Struct(">BBH")  # type, remaining length 2, packet id
_PUBACK_REASON = struct.Struct(">BBHBB")  # ... reason code, property length 0

_PINGREQ = b"\xc0\x00"
_PROTOCOL = b"\x00\x04MQTT\x05"

# Property identifiers used here.
_MESSAGE_EXPIRY = 0x02
_CONTENT_TYPE = 0x03
_RESPONSE_TOPIC = 0x08
_CORRELATION_DATA = 0x09
_SESSION_EXPIRY = 0x11
_ASSIGNED_CLIENT_ID = 0x12
_SERVER_KEEP_ALIVE = 0x13
_REASON_STRING = 0x1F
_RECEIVE_MAXIMUM = 0x21
_MAXIMUM_QOS = 0x24
_USER_PROPERTY = 0x26
_MAXIMUM_PACKET_SIZE = 0x27

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

_Buffer = bytes | bytearray | memoryview

# What Mosquitto refuses in any string (it disconnects the sender): U+0000 and other
# control characters, and non-characters. Lone surrogates fail to encode anyway.
_REFUSED_TEXT = re.compile(
    "[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)
_DECODE_ERRORS = (IndexError, ValueError, struct.error)  # UnicodeDecodeError is a ValueError


# --- primitives ---------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """Encode a variable byte integer (0 to 268,435,455) in one to four bytes.

    Raises:
        ProtocolError: ``value`` is out of range.
    """
    if value < _CONTINUATION:  # the common case: a small packet or no properties
        if value < 0:
            raise ProtocolError(f"variable byte integer {value} is negative")
        return bytes((value,))
    if value > MAX_REMAINING_LENGTH:
        raise ProtocolError(f"{value} exceeds MQTT's largest length {MAX_REMAINING_LENGTH}")
    out = bytearray()
    while value >= _CONTINUATION:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: _Buffer, pos: int) -> tuple[int, int]:
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
        if byte < _CONTINUATION:
            return value, i + 1
        shift += 7
    raise ProtocolError("variable byte integer longer than four bytes")


def _string(value: str, what: str) -> bytes:
    """A UTF-8 string with its two-byte length; refuses what a broker would reject."""
    try:
        data = value.encode()
    except UnicodeEncodeError as exc:  # lone surrogates
        raise ProtocolError(f"{what} is not valid UTF-8: {exc}") from None
    except AttributeError:
        raise ProtocolError(f"{what} must be a string, not {type(value).__name__}") from None
    if len(data) > _MAX_STRING:
        raise ProtocolError(f"{what} is {len(data)} bytes long; MQTT allows {_MAX_STRING}")
    # isprintable() is a fast pass for almost every string; the pattern is ~20x slower.
    if not value.isprintable() and _REFUSED_TEXT.search(value) is not None:
        raise ProtocolError(
            f"{what} {value[:80]!r} contains a control character or non-character, "
            "which brokers refuse"
        )
    return _U16.pack(len(data)) + data


def _binary(value: bytes, what: str) -> bytes:
    try:
        data = bytes(value)
    except TypeError:
        raise ProtocolError(f"{what} must be bytes, not {type(value).__name__}") from None
    if len(data) > _MAX_STRING:
        raise ProtocolError(f"{what} is {len(data)} bytes long; MQTT allows {_MAX_STRING}")
    return _U16.pack(len(data)) + data


def _fixed_header(first: int, remaining: int) -> bytes:
    if remaining > MAX_REMAINING_LENGTH:
        raise ProtocolError(
            f"packet of {remaining} bytes exceeds MQTT's largest {MAX_REMAINING_LENGTH}"
        )
    return bytes((first,)) + encode_varint(remaining)


def _check_packet_id(packet_id: int) -> None:
    if not 1 <= packet_id <= _MAX_PACKET_ID:
        raise ProtocolError(f"packet id {packet_id} is outside 1..{_MAX_PACKET_ID}")


# --- encoding -----------------------------------------------------------------------------


def encode_connect(
    client_id: str,
    *,
    keepalive: int,
    clean_start: bool = True,
    username: str | None = None,
    password: str | bytes | None = None,
    session_expiry: int | None = None,
    receive_maximum: int | None = None,
) -> bytes:
    """Encode a CONNECT packet (MQTT 5, no will).

    Args:
        client_id: The client identifier.
        keepalive: Keep alive in seconds (0 to 65,535).
        clean_start: Start a new session instead of resuming a stored one.
        username: Optional user name.
        password: Optional password (a string is sent as UTF-8).
        session_expiry: Session Expiry Interval property, in seconds.
        receive_maximum: Receive Maximum property: QoS 1 messages the broker may send
            before they are acknowledged.

    Raises:
        ProtocolError: A value that MQTT cannot carry.
    """
    flags = 0x02 if clean_start else 0
    payload = [_string(client_id, "client id")]
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
            props += bytes((_SESSION_EXPIRY,)) + _U32.pack(session_expiry)
        if receive_maximum is not None:
            if receive_maximum == 0:
                raise ProtocolError("Receive Maximum must not be 0")
            props += bytes((_RECEIVE_MAXIMUM,)) + _U16.pack(receive_maximum)
        header = _PROTOCOL + bytes((flags,)) + _U16.pack(keepalive)
    except struct.error as exc:
        raise ProtocolError(f"CONNECT value out of range: {exc}") from None
    body = header + encode_varint(len(props)) + props + b"".join(payload)
    return _fixed_header(0x10, len(body)) + body


def encode_publish(  # noqa: PLR0912 - one branch per property, kept flat for speed
    message: Message, packet_id: int = 0, *, dup: bool = False
) -> bytes:
    """Encode ``message`` as a PUBLISH packet with its MQTT 5 properties.

    Args:
        message: Topic, payload, QoS (0 or 1), retain flag and properties.
        packet_id: The packet id (1..65,535); required for QoS 1, ignored for QoS 0.
        dup: The DUP flag, for a QoS 1 message sent again.

    Raises:
        ProtocolError: The message cannot be published: an empty topic or one with a
            wildcard, a string over 65,535 bytes or with a control character (which
            brokers refuse), a payload that is not bytes, QoS other than 0 or 1, a value
            out of range.
    """
    topic = message.topic
    if not topic or "+" in topic or "#" in topic:
        raise ProtocolError(f"cannot publish to {topic!r}: a topic must be set, without wildcards")
    payload = message.payload
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ProtocolError(
            f"cannot publish to {topic!r}: the payload must be bytes, not {type(payload).__name__}"
        )
    qos = message.qos
    first = 0x30
    if qos:
        if qos != 1:
            raise ProtocolError(f"cannot publish to {topic!r}: QoS {qos} is not supported")
        _check_packet_id(packet_id)
        variable = _string(topic, "topic") + _U16.pack(packet_id)
        first = 0x3A if dup else 0x32
    else:
        variable = _string(topic, "topic")
    if message.retain:
        first |= 0x01
    props = []
    if message.content_type is not None:
        props.append(b"\x03" + _string(message.content_type, "content type"))
    if message.response_topic is not None:
        props.append(b"\x08" + _string(message.response_topic, "response topic"))
    if message.correlation_data is not None:
        props.append(b"\x09" + _binary(message.correlation_data, "correlation data"))
    if message.message_expiry is not None:
        try:
            props.append(b"\x02" + _U32.pack(message.message_expiry))
        except struct.error:
            raise ProtocolError(
                f"message expiry {message.message_expiry} is outside 0..4294967295"
            ) from None
    for key, value in message.user_properties:
        props.append(b"\x26" + _string(key, "user property name") + _string(value, "user property"))
    prop_bytes = b"".join(props)
    prop_length = encode_varint(len(prop_bytes))
    remaining = len(variable) + len(prop_length) + len(prop_bytes) + len(payload)
    if remaining > MAX_REMAINING_LENGTH:
        raise ProtocolError(
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
        ProtocolError: An empty filter, one over 65,535 bytes or with U+0000, or QoS
            other than 0, 1 or 2.
    """
    _check_packet_id(packet_id)
    if not topic_filter:
        raise ProtocolError("cannot subscribe to an empty topic filter")
    if qos not in (0, 1, 2):
        raise ProtocolError(f"cannot subscribe to {topic_filter!r}: QoS {qos} does not exist")
    body = _U16.pack(packet_id) + b"\x00" + _string(topic_filter, "topic filter") + bytes((qos,))
    return _fixed_header(0x82, len(body)) + body


def encode_pingreq() -> bytes:
    """Encode a PINGREQ."""
    return _PINGREQ


def encode_disconnect(reason_code: int = 0) -> bytes:
    """Encode a DISCONNECT; reason 0 (normal disconnection) takes the two-byte form."""
    if reason_code == 0:
        return b"\xe0\x00"
    return bytes((0xE0, 2, reason_code, 0))


# --- decoding -----------------------------------------------------------------------------


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


def _skip_property(data: _Buffer, pos: int, ident: int) -> int:
    """Return the position after the value of property ``ident`` starting at ``pos``."""
    kind = _PROPERTY_TYPES.get(ident)
    if kind is None:
        raise ProtocolError(f"unknown property identifier {ident:#04x}")
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


def _read_string(data: _Buffer, pos: int) -> tuple[str, int]:
    end = pos + 2 + (data[pos] << 8 | data[pos + 1])
    if end > len(data):
        raise ProtocolError("string runs past the end of its packet")
    return str(data[pos + 2 : end], "utf-8"), end


def _read_binary(data: _Buffer, pos: int) -> tuple[bytes, int]:
    end = pos + 2 + (data[pos] << 8 | data[pos + 1])
    if end > len(data):
        raise ProtocolError("binary data runs past the end of its packet")
    return bytes(data[pos + 2 : end]), end


def _properties_end(data: _Buffer, pos: int) -> tuple[int, int]:
    """Read a property length at ``pos``; return (first property, end of properties)."""
    length, pos = decode_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("properties run past the end of their packet")
    return pos, end


def decode_connack(body: _Buffer) -> ConnAck:
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
            pos, end = _properties_end(body, 2)
            while pos < end:
                ident = body[pos]
                pos += 1
                if ident == _RECEIVE_MAXIMUM:
                    values["receive_maximum"] = body[pos] << 8 | body[pos + 1]
                    if not values["receive_maximum"]:
                        raise ProtocolError("CONNACK Receive Maximum is 0")
                elif ident == _MAXIMUM_QOS:
                    values["maximum_qos"] = body[pos]
                elif ident == _SERVER_KEEP_ALIVE:
                    values["server_keep_alive"] = body[pos] << 8 | body[pos + 1]
                elif ident == _MAXIMUM_PACKET_SIZE:
                    values["maximum_packet_size"] = _U32.unpack_from(body, pos)[0]
                elif ident == _REASON_STRING:
                    values["reason_string"], pos = _read_string(body, pos)
                    continue
                elif ident == _ASSIGNED_CLIENT_ID:
                    values["assigned_client_id"], pos = _read_string(body, pos)
                    continue
                pos = _skip_property(body, pos, ident)
            if pos != end:
                raise ProtocolError("CONNACK properties do not end where their length says")
        return ConnAck(bool(flags & 1), reason, **values)  # type: ignore[arg-type]  # keys above
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"malformed CONNACK: {exc}") from None


def decode_publish(  # noqa: PLR0912 - one branch per property, kept flat for speed
    first: int, body: _Buffer, received_at: float, generation: int
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
            pos, end = _properties_end(body, pos)
            while pos < end:
                ident = body[pos]
                pos += 1
                if ident == _USER_PROPERTY:
                    key, pos = _read_string(body, pos)
                    value, pos = _read_string(body, pos)
                    user.append((key, value))
                elif ident == _CORRELATION_DATA:
                    correlation, pos = _read_binary(body, pos)
                elif ident == _RESPONSE_TOPIC:
                    response_topic, pos = _read_string(body, pos)
                elif ident == _CONTENT_TYPE:
                    content_type, pos = _read_string(body, pos)
                elif ident == _MESSAGE_EXPIRY:
                    expiry = _U32.unpack_from(body, pos)[0]
                    pos += 4
                else:
                    pos = _skip_property(body, pos, ident)
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


def decode_puback(body: _Buffer) -> tuple[int, int]:
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
            end = _properties_end(body, 3)[1]
        except _DECODE_ERRORS as exc:
            raise ProtocolError(f"malformed PUBACK: {exc}") from None
        if end != size:
            raise ProtocolError("PUBACK properties do not end where their length says")
    return body[0] << 8 | body[1], body[2]


def decode_suback(body: _Buffer) -> SubAck:
    """Decode a SUBACK.

    Raises:
        ProtocolError: It is malformed or carries no reason code.
    """
    try:
        packet_id = body[0] << 8 | body[1]
        pos = _properties_end(body, 2)[1]
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"malformed SUBACK: {exc}") from None
    codes = tuple(body[pos:])
    if not codes:
        raise ProtocolError("SUBACK without a reason code")
    return SubAck(packet_id, codes)


def decode_disconnect(body: _Buffer) -> Disconnect:
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
        pos, end = _properties_end(body, 1)
        while pos < end:
            ident = body[pos]
            pos += 1
            if ident == _REASON_STRING:
                text, pos = _read_string(body, pos)
            else:
                pos = _skip_property(body, pos, ident)
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"malformed DISCONNECT: {exc}") from None
    if pos != end:
        raise ProtocolError("DISCONNECT properties do not end where their length says")
    return Disconnect(reason, text)


# --- framing ------------------------------------------------------------------------------


class PacketReader:
    """Frames a byte stream into packets: feed it chunks, get back every complete packet.

    A packet split across chunks waits in a buffer until its last byte arrives; the
    buffer is not re-scanned before then, so a large payload costs one copy.
    """

    __slots__ = ("_buffer", "_need")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._need = 0  # bytes the buffered partial packet needs before it can be framed

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of their packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[int, memoryview]]:
        """Add ``data`` and return the packets it completes, in order.

        Returns:
            (first byte, body) per packet; the body is a read-only view.

        Raises:
            ProtocolError: A remaining length longer than four bytes.
        """
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return []
            data = bytes(buffer)
            buffer.clear()
        elif type(data) is not bytes:
            data = bytes(data)  # a view must not see its source change
        view = memoryview(data)
        size = len(data)
        pos = 0
        packets: list[tuple[int, memoryview]] = []
        append = packets.append
        while size - pos >= 2:  # noqa: PLR2004 - the smallest fixed header
            first = data[pos]
            length = data[pos + 1]
            start = pos + 2
            if length >= _CONTINUATION:  # a remaining length of two to four bytes
                length &= 0x7F
                shift = 7
                while True:
                    if shift > 21:  # noqa: PLR2004 - four bytes of seven bits
                        raise ProtocolError("remaining length longer than four bytes")
                    if start >= size:
                        self._keep(view, pos, size - pos + 1)
                        return packets
                    byte = data[start]
                    start += 1
                    length |= (byte & 0x7F) << shift
                    if byte < _CONTINUATION:
                        break
                    shift += 7
            end = start + length
            if end > size:
                self._keep(view, pos, end - pos)
                return packets
            append((first, view[start:end]))
            pos = end
        if pos < size:
            self._keep(view, pos, 2)
        return packets

    def _keep(self, view: memoryview, pos: int, need: int) -> None:
        self._buffer += view[pos:]
        self._need = need
