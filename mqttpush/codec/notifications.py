"""Push notifications (plain or CloudEvents structured mode) and receipts on the wire."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pydantic_core
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from mqttpush.errors import (
    ProtocolError,
)
from mqttpush.models import (
    PushNotification,
    Receipt,
    WireModel,
)
from mqttpush.transport.base import Message

if TYPE_CHECKING:
    from collections.abc import Sequence

from mqttpush.codec.envelope import CONTENT_TYPE, Envelope, validation_detail

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "CLOUDEVENTS_TYPE",
    "MAX_NOTIFICATION_BYTES",
    "ReceiptRow",
    "decode_notification",
    "decode_receipts",
    "encode_notification",
    "encode_push",
    "encode_receipt_rows",
    "encode_receipts",
    "receipt_of",
]

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
CLOUDEVENTS_TYPE = "io.mqttpush.task.notification"  # the CloudEvents ``type`` of a notification
_W = TypeVar("_W", bound=WireModel)
#: A receipt as a JSON object (:func:`receipt_of`): what :class:`Receipt` dumps.
ReceiptRow = dict[str, str | int | bool]
_RECEIPTS = TypeAdapter(list[Receipt])
_RECEIPT_OR_RECEIPTS: TypeAdapter[Receipt | list[Receipt]] = TypeAdapter(Receipt | list[Receipt])
#: Bytes a notification's payload may have: senders keep each until its receipt comes.
MAX_NOTIFICATION_BYTES = 256 << 10
# Validated straight from the payload bytes: ``model_validate_json`` costs as much again
# in its keyword arguments, and this runs once per notification received.
_NOTIFICATION = PushNotification.__pydantic_validator__


def _json_message(
    topic: str, model: WireModel, envelope: Envelope, *, bulk: bool = False
) -> Message:
    """A QoS 1 JSON message carrying ``model`` (None fields left out) and the envelope."""
    return Message(
        topic=topic,
        payload=model.__pydantic_serializer__.to_json(model, exclude_none=True),
        qos=1,
        content_type=CONTENT_TYPE,
        user_properties=envelope.to_user_properties(),
        bulk=bulk,
    )


def _decode(model: type[_W], payload: bytes, what: str) -> _W:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(f"malformed {what}: {validation_detail(exc)}") from exc


def encode_notification(
    topic: str,
    notification: PushNotification,
    envelope: Envelope,
    *,
    cloudevents_source: str | None = None,
) -> Message:
    """Build the QoS 1 message for one push notification.

    With ``cloudevents_source`` (the sender's address), the payload is a CloudEvents 1.0
    event in structured JSON mode whose ``data`` is the notification (docs/protocol.md).

    Raises:
        ProtocolError: Its payload would be over :data:`MAX_NOTIFICATION_BYTES`.
    """
    return encode_push(
        topic, notification, envelope.to_user_properties(), cloudevents_source=cloudevents_source
    )


def encode_push(
    topic: str,
    notification: PushNotification,
    user_properties: tuple[tuple[str, str], ...],
    *,
    cloudevents_source: str | None = None,
) -> Message:
    """:func:`encode_notification`, given the envelope's user properties already made.

    A sender keeps those per endpoint (they repeat on every notification of a task).

    Raises:
        ProtocolError: Its payload would be over :data:`MAX_NOTIFICATION_BYTES`.
    """
    body = notification.__pydantic_serializer__.to_json(notification, exclude_none=True)
    if cloudevents_source is None:
        payload = body
        content_type = CONTENT_TYPE
    else:
        payload = b"".join((
            b'{"specversion":"1.0","type":"', CLOUDEVENTS_TYPE.encode(),
            b'","source":', pydantic_core.to_json(f"mqttpush:{cloudevents_source}"),
            b',"id":', pydantic_core.to_json(notification.id),
            b',"time":', pydantic_core.to_json(notification.timestamp),
            b',"subject":', pydantic_core.to_json(notification.task_id),
            b',"datacontenttype":"application/json","data":', body, b"}",
        ))  # fmt: skip
        content_type = CLOUDEVENTS_CONTENT_TYPE
    if len(payload) > MAX_NOTIFICATION_BYTES:
        raise ProtocolError(_too_large("notification", len(payload)))
    return Message(
        topic=topic,
        payload=payload,
        qos=1,
        content_type=content_type,
        user_properties=user_properties,
        bulk=True,
    )


class _CloudEvent(WireModel):
    """The CloudEvents 1.0 attributes mqttpush reads (extensions allowed, not used)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    type: str
    source: str = Field(min_length=1)
    id: str = Field(min_length=1)
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]


def decode_notification(payload: bytes, content_type: str | None = None) -> PushNotification:
    """Decode a push notification payload: native, or a CloudEvent.

    A CloudEvent is recognised by its Content Type (parameters such as ``charset``
    ignored), or, without one, by its ``specversion`` member.

    Raises:
        ProtocolError: Not a valid notification (or a CloudEvent whose ``id`` is not
            the notification's), or over :data:`MAX_NOTIFICATION_BYTES`.
    """
    if len(payload) > MAX_NOTIFICATION_BYTES:
        raise ProtocolError(_too_large("push notification", len(payload)))
    if content_type != CONTENT_TYPE:  # what mqttpush senders set: known native at once
        kind = (content_type or "").partition(";")[0].strip().lower()
        if kind == CLOUDEVENTS_CONTENT_TYPE or (kind == "" and b'"specversion"' in payload):
            return _decode_event(payload)
    try:
        notification: PushNotification = _NOTIFICATION.validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(f"malformed push notification: {validation_detail(exc)}") from exc
    return notification


def _decode_event(payload: bytes) -> PushNotification:
    """The notification a CloudEvent in structured JSON mode carries as its ``data``."""
    event = _decode(_CloudEvent, payload, "CloudEvent")
    try:
        notification = PushNotification.model_validate(event.data)
    except ValidationError as exc:
        raise ProtocolError(f"malformed CloudEvent data: {validation_detail(exc)}") from exc
    if notification.id != event.id:
        raise ProtocolError(f"CloudEvent id {event.id!r} is not its notification's id")
    return notification


def _too_large(what: str, size: int) -> str:
    return f"{what} of {size} bytes is over the limit of {MAX_NOTIFICATION_BYTES} bytes"


def encode_receipts(topic: str, receipts: Sequence[Receipt], envelope: Envelope) -> Message:
    """Build the QoS 1 message carrying receipts for handled notifications.

    One receipt is sent as a JSON object; several (handled in the same moment, for
    the same sender) as a JSON array of them, so a burst costs one message.
    """
    if len(receipts) == 1:
        return _json_message(topic, receipts[0], envelope)
    return Message(
        topic=topic,
        payload=_RECEIPTS.dump_json(list(receipts), exclude_none=True),
        qos=1,
        content_type=CONTENT_TYPE,
        user_properties=envelope.to_user_properties(),
    )


def receipt_of(notification: PushNotification, endpoint: str, *, handled: bool) -> ReceiptRow:
    """The receipt of ``notification`` as :func:`encode_receipt_rows` takes it.

    The fields of :class:`~mqttpush.models.Receipt`, in its order, without building the
    model: they come from a notification validated when it was decoded, and ``endpoint``
    is the receiving agent's own address.
    """
    return {
        "id": notification.id,
        "task_id": notification.task_id,
        "seq": notification.seq,
        "endpoint": endpoint,
        "handled": handled,
    }


def encode_receipt_rows(topic: str, rows: Sequence[ReceiptRow], envelope: Envelope) -> Message:
    """Build the message :func:`encode_receipts` builds, from :func:`receipt_of` rows."""
    payload = pydantic_core.to_json(rows[0] if len(rows) == 1 else rows)
    return Message(
        topic=topic,
        payload=payload,
        qos=1,
        content_type=CONTENT_TYPE,
        user_properties=envelope.to_user_properties(),
    )


def decode_receipts(payload: bytes) -> list[Receipt]:
    """Decode a message of receipts: one receipt object, or an array of them.

    Raises:
        ProtocolError: Neither a valid receipt nor an array of valid receipts.
    """
    try:
        decoded = _RECEIPT_OR_RECEIPTS.validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(f"malformed delivery receipt: {validation_detail(exc)}") from exc
    return decoded if isinstance(decoded, list) else [decoded]
