"""Fields of the packets a client sends: strings, binary data, and PUBLISH properties.

A value that MQTT cannot carry, or that a broker would refuse (and disconnect for),
raises :class:`~mqttpush.errors.PacketRefusedError` here, before anything is sent.
User properties are encoded once per distinct pair and per distinct set: a sender's
messages repeat theirs (its envelope), so most publishes look them up.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from mqttpush.address import is_mqtt_text
from mqttpush.errors import PacketRefusedError
from mqttpush.transport.native.packets.wire import U16, U32

if TYPE_CHECKING:
    from mqttpush.transport.base import Message

__all__ = ["binary", "encode_publish_properties", "string"]

_MAX_STRING = 65_535
_KEPT = 256  # distinct user properties, and sets of them, kept encoded
_encoded_users: dict[tuple[tuple[str, str], ...], bytes] = {}
_encoded_pairs: dict[tuple[str, str], bytes] = {}
_encoded_names: dict[str, bytes] = {}  # with the User Property identifier before
_encoded_types: dict[str, bytes] = {}  # content types, with their identifier before


def string(value: str, what: str) -> bytes:
    """A UTF-8 string with its two-byte length; refuses what a broker would reject."""
    try:
        data = value.encode()
    except UnicodeEncodeError as exc:  # lone surrogates
        raise PacketRefusedError(f"{what} is not valid UTF-8: {exc}") from None
    except AttributeError:
        raise PacketRefusedError(f"{what} must be a string, not {type(value).__name__}") from None
    if len(data) > _MAX_STRING:
        raise PacketRefusedError(f"{what} is {len(data)} bytes long; MQTT allows {_MAX_STRING}")
    # isprintable() is a fast pass for almost every string; the full check is slower.
    if not value.isprintable() and not is_mqtt_text(value):
        raise PacketRefusedError(
            f"{what} {value[:80]!r} contains a control character or non-character, "
            "which brokers refuse"
        )
    return U16.pack(len(data)) + data


def binary(value: bytes, what: str) -> bytes:
    """Binary data with its two-byte length."""
    try:
        data = bytes(value)
    except TypeError:
        raise PacketRefusedError(f"{what} must be bytes, not {type(value).__name__}") from None
    if len(data) > _MAX_STRING:
        raise PacketRefusedError(f"{what} is {len(data)} bytes long; MQTT allows {_MAX_STRING}")
    return U16.pack(len(data)) + data


def encode_publish_properties(message: Message) -> bytes:
    """The MQTT 5 properties of ``message``'s PUBLISH, checked, without their length.

    Raises:
        PacketRefusedError: A string over 65,535 bytes or with a control character, or
            a Message Expiry out of range.
    """
    props = []
    content_type = message.content_type
    if content_type is not None:
        try:
            props.append(_encoded_types[content_type])
        except (KeyError, TypeError):
            encoded = b"\x03" + string(content_type, "content type")
            _keep(_encoded_types, content_type, encoded)
            props.append(encoded)
    if message.response_topic is not None:
        props.append(b"\x08" + string(message.response_topic, "response topic"))
    if message.correlation_data is not None:
        props.append(b"\x09" + binary(message.correlation_data, "correlation data"))
    if message.message_expiry is not None:
        try:
            props.append(b"\x02" + U32.pack(message.message_expiry))
        except struct.error:
            raise PacketRefusedError(
                f"message expiry {message.message_expiry} is outside 0..4294967295"
            ) from None
    if message.user_properties:
        props.append(_user_properties(message.user_properties))
    return b"".join(props)


def _user_properties(pairs: tuple[tuple[str, str], ...]) -> bytes:
    """User properties, encoded and checked once per distinct pair and set (senders repeat).

    A pair seen for the first time (an id) still finds its name encoded: names repeat.
    """
    try:
        return _encoded_users[pairs]
    except (KeyError, TypeError):  # not seen yet, or not hashable (a list): encoded below
        pass
    parts = []
    repeated = True  # a set of pairs all seen before is likely to come again
    for pair in pairs:
        try:
            part = _encoded_pairs[pair]
        except (KeyError, TypeError):
            key, value = pair
            try:
                name = _encoded_names[key]
            except (KeyError, TypeError):
                name = b"\x26" + string(key, "user property name")
                _keep(_encoded_names, key, name)
            part = name + string(value, "user property")
            _keep(_encoded_pairs, pair, part)
            repeated = False
        parts.append(part)
    encoded = b"".join(parts)
    if repeated:
        _keep(_encoded_users, pairs, encoded)
    return encoded


def _keep(kept: dict[Any, bytes], key: object, value: bytes) -> None:
    if len(kept) >= _KEPT:
        kept.clear()
    try:  # noqa: SIM105 - not contextlib.suppress: this runs for every new pair, ids included
        kept[key] = value
    except TypeError:  # a list is not kept
        pass
