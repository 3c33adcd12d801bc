"""Between paho's and mqttpush's shapes: messages, properties and reason codes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttpush.transport.base import Message

if TYPE_CHECKING:
    import aiomqtt

__all__ = ["code_of", "from_aiomqtt", "to_properties"]


def code_of(value: Any) -> int | None:  # noqa: ANN401 - paho's codes are untyped
    """The number of a paho reason code, return code or int (None for none)."""
    if value is None:
        return None
    return int(getattr(value, "value", value))


def to_properties(message: Message) -> Properties | None:
    """The paho PUBLISH properties of ``message`` (None when it has none)."""
    values = (
        ("ContentType", message.content_type),
        ("CorrelationData", message.correlation_data),
        ("ResponseTopic", message.response_topic),
        ("MessageExpiryInterval", message.message_expiry),
        ("UserProperty", list(message.user_properties) or None),
    )
    present = [(name, value) for name, value in values if value is not None]
    if not present:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho is untyped here
    for name, value in present:
        setattr(props, name, value)
    return props


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
