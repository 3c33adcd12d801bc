"""Decoders of the broker's answers: CONNACK, SUBACK and DISCONNECT, and their types.

Bytes that do not follow MQTT 5 raise :class:`~mqttpush.transport.native.packets.wire.PacketError`
(a :class:`~mqttpush.errors.ProtocolError`) with the DISCONNECT reason code they call for.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqttpush.transport.native.packets.properties import (
    ASSIGNED_CLIENT_ID,
    MAXIMUM_PACKET_SIZE,
    MAXIMUM_QOS,
    REASON_STRING,
    RECEIVE_MAXIMUM,
    SERVER_KEEP_ALIVE,
    SERVER_REFERENCE,
    USER_PROPERTY,
    once,
    properties_end,
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
    "decode_suback",
]

_ID_SIZE = 2  # a packet id, or a two-byte length
_WILDCARDS_AVAILABLE = 0x28
_SHARED_AVAILABLE = 0x2A
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
