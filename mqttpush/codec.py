"""The one codec: wire models to payload bytes plus MQTT 5 properties, and back.

Nothing else in mqttpush builds payloads or reads properties; see docs/protocol.md.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from mqttpush.address import is_mqtt_text
from mqttpush.errors import InvalidRequestError, ParseError, ProtocolError, RpcError
from mqttpush.models import (
    JsonRpcRequest,
    JsonRpcResponse,
    PushNotification,
    Receipt,
    WireModel,
)
from mqttpush.transport.base import Message

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mqttpush.models import JsonRpcId

__all__ = [
    "CONTENT_TYPE",
    "Envelope",
    "decode_notification",
    "decode_receipts",
    "decode_request",
    "decode_response",
    "encode_notification",
    "encode_receipts",
    "encode_reply",
    "encode_request",
    "remaining_expiry",
    "validation_detail",
]

CONTENT_TYPE = "application/json"
_W = TypeVar("_W", bound=WireModel)
_RECEIPTS = TypeAdapter(list[Receipt])
_RECEIPT_OR_RECEIPTS: TypeAdapter[Receipt | list[Receipt]] = TypeAdapter(Receipt | list[Receipt])

# User property names of the envelope metadata (docs/protocol.md, "Envelope").
SENDER = "mqttpush-sender"
OPERATION = "mqttpush-op"
CORRELATION_ID = "mqttpush-cid"
TRACE_ID = "mqttpush-trace"
TOKEN = "mqttpush-token"  # noqa: S105 - a user property name, not a secret
_MAX_PROPERTY = 1024  # bytes of one envelope value


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """Return pydantic's errors as plain JSON (no URLs, no exception objects)."""
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


@dataclass(frozen=True, slots=True)
class Envelope:
    """Metadata that travels in MQTT 5 user properties beside every payload."""

    sender: str | None = None
    operation: str | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # trace context (traceparent, tracestate)

    def to_user_properties(self) -> tuple[tuple[str, str], ...]:
        """Return the envelope as user properties, leaving out unset fields.

        Values can come from a request (the method name): one that is not a valid
        MQTT string, or is longer than 1,024 bytes, is left out rather than making
        the broker refuse the whole message.
        """
        pairs = (
            (SENDER, self.sender),
            (OPERATION, self.operation),
            (CORRELATION_ID, self.correlation_id),
            (TRACE_ID, self.trace_id),
            (TOKEN, self.token),
        )
        kept = tuple((k, v) for k, v in pairs if v is not None and _fits(v))
        return kept + self.headers if self.headers else kept

    @classmethod
    def of(cls, message: Message) -> Envelope:
        """Read the envelope from a received message (the first value of a repeated name)."""
        get = message.user_property
        return cls(get(SENDER), get(OPERATION), get(CORRELATION_ID), get(TRACE_ID), get(TOKEN))


@functools.lru_cache(maxsize=4096)  # the same sender, operation and token on every message
def _fits(value: str) -> bool:
    return (
        len(value) <= _MAX_PROPERTY and len(value.encode()) <= _MAX_PROPERTY and is_mqtt_text(value)
    )


def remaining_expiry(message: Message, now: float | None = None) -> float | None:
    """Seconds left before ``message`` expires (may be negative), or None if it never does."""
    if message.message_expiry is None:
        return None
    now = time.monotonic() if now is None else now
    return message.message_expiry - (now - message.received_at)


def encode_request(
    *,
    topic: str,
    method: str,
    params: Any,  # noqa: ANN401 - any JSON-serialisable object or pydantic model
    correlation_id: str,
    reply_topic: str,
    timeout: float | None,
    envelope: Envelope,
) -> Message:
    """Build a JSON-RPC request whose id is the correlation id."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": correlation_id, "method": method}
    if params is not None:
        body["params"] = params
    return Message(
        topic=topic,
        payload=pydantic_core.to_json(body),
        qos=1,
        content_type=CONTENT_TYPE,
        correlation_data=correlation_id.encode(),
        response_topic=reply_topic,
        message_expiry=None if timeout is None else max(1, math.ceil(timeout)),
        user_properties=envelope.to_user_properties(),
    )


def decode_request(payload: bytes) -> tuple[JsonRpcId, JsonRpcRequest | RpcError]:
    """Decode a request payload.

    Returns:
        The request's id (None when it cannot be read) and either the request or the
        error to answer it with (-32700 or -32600).
    """
    try:
        obj = pydantic_core.from_json(payload)
    except ValueError as exc:
        return None, ParseError(data={"detail": str(exc)})
    if not isinstance(obj, dict):
        kind = (
            "batch requests are not supported"
            if isinstance(obj, list)
            else "a request must be a JSON object"
        )
        return None, InvalidRequestError(data={"detail": kind})
    raw_id = obj.get("id")
    request_id: JsonRpcId = (
        raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    )
    try:
        return request_id, JsonRpcRequest.model_validate(obj)
    except ValidationError as exc:
        return request_id, InvalidRequestError(data=validation_detail(exc))


def encode_reply(
    request: Message,
    request_id: JsonRpcId,
    *,
    result: Any = None,  # noqa: ANN401 - any JSON value
    error: RpcError | None = None,
    envelope: Envelope,
) -> Message | None:
    """Build the response to ``request``, or None when it carries no Response Topic."""
    if not request.response_topic:
        return None
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    if error is None:
        body["result"] = result
    else:
        body["error"] = error.to_wire()
    left = remaining_expiry(request)
    return Message(
        topic=request.response_topic,
        payload=pydantic_core.to_json(body),
        qos=1,
        content_type=CONTENT_TYPE,
        correlation_data=request.correlation_data,
        message_expiry=None if left is None else max(1, math.ceil(left)),
        user_properties=envelope.to_user_properties(),
    )


def decode_response(payload: bytes) -> JsonRpcResponse:
    """Decode a response payload.

    Raises:
        ProtocolError: Not a JSON-RPC 2.0 response object.
    """
    try:
        return JsonRpcResponse.model_validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(f"malformed JSON-RPC response: {validation_detail(exc)}") from exc


def _json_message(topic: str, model: WireModel, envelope: Envelope) -> Message:
    """A QoS 1 JSON message carrying ``model`` (None fields left out) and the envelope."""
    return Message(
        topic=topic,
        payload=model.__pydantic_serializer__.to_json(model, exclude_none=True),
        qos=1,
        content_type=CONTENT_TYPE,
        user_properties=envelope.to_user_properties(),
    )


def _decode(model: type[_W], payload: bytes, what: str) -> _W:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(f"malformed {what}: {validation_detail(exc)}") from exc


def encode_notification(topic: str, notification: PushNotification, envelope: Envelope) -> Message:
    """Build the QoS 1 message for one push notification."""
    return _json_message(topic, notification, envelope)


def decode_notification(payload: bytes) -> PushNotification:
    """Decode a push notification payload.

    Raises:
        ProtocolError: Not a valid notification.
    """
    return _decode(PushNotification, payload, "push notification")


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
