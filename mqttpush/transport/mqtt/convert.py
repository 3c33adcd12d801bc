"""Between paho's and mqttpush's shapes: messages, properties and reason codes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttpush.transport.base import Message
from mqttpush.transport.native.packets import encode_publish_properties, encode_varint

if TYPE_CHECKING:
    import aiomqtt

__all__ = ["code_of", "from_aiomqtt", "to_properties"]


def code_of(value: Any) -> int | None:  # noqa: ANN401 - paho's codes are untyped
    """The number of a paho reason code, return code or int (None for none)."""
    if value is None:
        return None
    return int(getattr(value, "value", value))


class _Packed(Properties):
    """PUBLISH properties paho sends as given: encoded once, by mqttpush's own encoder.

    Paho's own :class:`Properties` checks each name against every property name, on
    every attribute set and again on every ``pack()``: more CPU than the rest of a publish.
    """

    _template = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    types, names, properties = _template.types, _template.names, _template.properties

    def __init__(self, packed: bytes) -> None:
        object.__setattr__(self, "packetType", PacketTypes.PUBLISH)
        object.__setattr__(self, "_packed", packed)

    def pack(self) -> bytes:
        """The encoded properties, with their length."""
        packed: bytes = self.__dict__["_packed"]
        return packed


def to_properties(message: Message) -> Properties | None:
    """The paho PUBLISH properties of ``message`` (None when it has none).

    Raises:
        PacketRefusedError: A property MQTT does not allow (as the native client refuses).
    """
    encoded = encode_publish_properties(message)
    if not encoded:
        return None
    return _Packed(encode_varint(len(encoded)) + encoded)


def from_aiomqtt(raw: aiomqtt.Message, generation: int) -> Message:
    """The :class:`Message` of a message aiomqtt received on connection ``generation``."""
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
