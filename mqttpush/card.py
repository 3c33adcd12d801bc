"""The presence card: what a served agent says about itself, retained on its ``card`` topic.

An agent's card is published retained, QoS 1, on ``{prefix}/{domain}/{name}/card``
with Content Type ``application/json`` and the user properties ``mqttpush-status``
(``online`` or ``offline``) and ``mqttpush-status-source`` (``agent`` when the agent
published it, ``will`` when the broker published the agent's Will message because its
connection died). See docs/protocol.md, "Presence and discovery".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from mqttpush.errors import ProtocolError
from mqttpush.models import WireModel
from mqttpush.transport.base import Message

__all__ = [
    "CARD_STATUS",
    "CARD_STATUS_SOURCE",
    "AgentCard",
    "OperationCard",
    "decode_card",
    "encode_card",
]

CARD_STATUS = "mqttpush-status"
CARD_STATUS_SOURCE = "mqttpush-status-source"
MAX_CARD_BYTES = 256 * 1024  # a card larger than this is not read


class OperationCard(WireModel):
    """One operation an agent serves: its name, what it does, its params' JSON Schema."""

    name: str
    description: str | None = None
    params: dict[str, Any]


class AgentCard(WireModel):
    """What a served agent publishes about itself (retained, on its ``card`` topic)."""

    address: str
    status: Literal["online", "offline"]
    agent: str  # the agent's class name
    version: str  # the mqttpush version serving it
    online_since: datetime
    updated_at: datetime
    topics: dict[str, str]  # rpc, push (a filter), ack
    operations: list[OperationCard]
    notification_schema: dict[str, Any] | None = None


def encode_card(topic: str, card: AgentCard, source: Literal["agent", "will"]) -> Message:
    """The retained QoS 1 message carrying ``card``, its status in user properties."""
    return Message(
        topic=topic,
        payload=card.__pydantic_serializer__.to_json(card),
        qos=1,
        retain=True,
        content_type="application/json",
        user_properties=((CARD_STATUS, card.status), (CARD_STATUS_SOURCE, source)),
    )


def decode_card(message: Message) -> AgentCard:
    """Read a card message.

    Raises:
        ProtocolError: Not a card (or larger than 256 KiB).
    """
    if len(message.payload) > MAX_CARD_BYTES:
        raise ProtocolError(f"card on {message.topic} is {len(message.payload)} bytes")
    try:
        card = AgentCard.model_validate_json(message.payload)
    except ValidationError as exc:
        raise ProtocolError(
            f"malformed card on {message.topic}: {exc.error_count()} errors"
        ) from exc
    status = message.user_property(CARD_STATUS)
    if status in ("online", "offline") and status != card.status:
        card = card.model_copy(update={"status": status})  # the property is the truth
    return card
