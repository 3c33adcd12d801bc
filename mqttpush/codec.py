"""The one codec: wire models to payload bytes plus MQTT 5 properties, and back.

Nothing else in mqttpush builds payloads or reads properties; see docs/protocol.md.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pydantic_core
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from mqttpush.address import is_mqtt_text
from mqttpush.errors import (
    InvalidParamsError,
    InvalidRequestError,
    ParseError,
    ProtocolError,
    RpcError,
)
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
    "CLOUDEVENTS_CONTENT_TYPE",
    "CLOUDEVENTS_TYPE",
    "CONTENT_TYPE",
    "MAX_NOTIFICATION_BYTES",
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
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
CLOUDEVENTS_TYPE = "io.mqttpush.task.notification"  # the CloudEvents ``type`` of a notification
_W = TypeVar("_W", bound=WireModel)
_RECEIPTS = TypeAdapter(list[Receipt])
_RECEIPT_OR_RECEIPTS: TypeAdapter[Receipt | list[Receipt]] = TypeAdapter(Receipt | list[Receipt])

# User property names of the envelope metadata (docs/protocol.md, "Envelope").
SENDER = "mqttpush-sender"
OPERATION = "mqttpush-op"
CORRELATION_ID = "mqttpush-cid"
TRACE_ID = "mqttpush-trace"
TOKEN = "mqttpush-token"  # noqa: S105 - a user property name, not a secret
PRIORITY = "mqttpush-priority"
_MAX_PROPERTY = 1024  # bytes of one envelope value
#: Bytes a notification's payload may have: senders keep each until its receipt comes.
MAX_NOTIFICATION_BYTES = 256 << 10
_ID_ERROR = {"loc": ["id"], "msg": "id must be a string, an integer or null", "type": "id_type"}
_SURROGATE = "lone surrogate escape (\\ud800-\\udfff without its pair): not valid Unicode"


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
    priority: str | None = None
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
            (PRIORITY, self.priority),
        )
        kept = tuple((k, v) for k, v in pairs if v is not None and _fits(v))
        return kept + self.headers if self.headers else kept

    @classmethod
    def of(cls, message: Message) -> Envelope:
        """Read the envelope from a received message (the first value of a repeated name)."""
        get = message.user_property
        return cls(
            get(SENDER), get(OPERATION), get(CORRELATION_ID), get(TRACE_ID), get(TOKEN),
            get(PRIORITY),
        )  # fmt: skip


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


def decode_request(
    payload: bytes, max_bytes: int | None = None
) -> tuple[JsonRpcId, JsonRpcRequest | RpcError]:
    """Decode a request payload.

    Args:
        payload: The message's payload.
        max_bytes: Refuse a larger payload (-32600) without parsing it.

    Returns:
        The request's id (None when it cannot be read) and either the request or the
        error to answer it with (-32700, -32600, or -32602 for a lone surrogate in
        ``params``).
    """
    if max_bytes is not None and len(payload) > max_bytes:
        detail = f"request of {len(payload)} bytes is over the limit of {max_bytes} bytes"
        return None, InvalidRequestError(data={"detail": detail})
    surrogate: list[str | int] | None = None
    try:
        obj = pydantic_core.from_json(payload)
    except ValueError as exc:
        obj = _with_lone_surrogates(payload, exc)
        if obj is None:
            return None, ParseError(data={"detail": str(exc)})
        surrogate = _lone_surrogate_at(obj)
    return _check_request(obj, surrogate)


def _check_request(
    obj: Any,  # noqa: ANN401 - any JSON
    surrogate: list[str | int] | None,
) -> tuple[JsonRpcId, JsonRpcRequest | RpcError]:
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
    if raw_id is not None and request_id is None:  # true, 1.5, 2.0, 1e2, an object, an array
        return None, InvalidRequestError(data=[_ID_ERROR])
    if surrogate is not None:
        if isinstance(raw_id, str) and _has_surrogate(raw_id):
            request_id = None  # not a string a reply could carry
        error = {"loc": surrogate, "msg": _SURROGATE, "type": "unicode"}
        if surrogate[:1] == ["params"]:
            return request_id, InvalidParamsError(data=[{**error, "loc": surrogate[1:]}])
        return request_id, InvalidRequestError(data=[error])
    try:
        return request_id, JsonRpcRequest.model_validate(obj)
    except ValidationError as exc:
        return request_id, InvalidRequestError(data=validation_detail(exc))


def _with_lone_surrogates(payload: bytes, exc: ValueError) -> Any:  # noqa: ANN401 - any JSON
    r"""The JSON value of ``payload`` when only a lone surrogate escape made it fail, else None.

    ``"\ud800"`` is valid JSON text but not Unicode: the fast parser refuses it, so it
    would look like a syntax error. Read it again to say what is wrong, and where.
    """
    if "surrogate" not in str(exc) and "hex escape" not in str(exc):
        return None
    try:
        return json.loads(payload, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # nested deeper than the stdlib parser goes
        return None


def _no_constant(name: str) -> Any:  # noqa: ANN401 - never returns
    raise ValueError(f"{name} is not JSON")


def _lone_surrogate_at(value: Any) -> list[str | int] | None:  # noqa: ANN401 - any JSON
    """The path to a string (key or value) with a lone surrogate, else None."""
    # Iterative, each item linked to its parent: no recursion, no path copied per item.
    stack: list[tuple[Any, _Link]] = [(value, None)]
    while stack:
        item, link = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return _path(link)
        elif isinstance(item, dict):
            for key, child in item.items():
                if _has_surrogate(key):
                    return _path((key, link))
                stack.append((child, (key, link)))
        elif isinstance(item, list):
            stack.extend((child, (i, link)) for i, child in enumerate(item))
    return None


_Link = tuple[str | int, Any] | None  # (key or index, the parent's link)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text)


def _path(link: _Link) -> list[str | int]:
    path: list[str | int] = []
    while link is not None:
        key, link = link
        path.append(key)
    return path[::-1]


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
    if cloudevents_source is None:
        message = _json_message(topic, notification, envelope)
    else:
        body = notification.__pydantic_serializer__.to_json(notification, exclude_none=True)
        event = b"".join((
            b'{"specversion":"1.0","type":"', CLOUDEVENTS_TYPE.encode(),
            b'","source":', pydantic_core.to_json(f"mqttpush:{cloudevents_source}"),
            b',"id":', pydantic_core.to_json(notification.id),
            b',"time":', pydantic_core.to_json(notification.timestamp),
            b',"subject":', pydantic_core.to_json(notification.task_id),
            b',"datacontenttype":"application/json","data":', body, b"}",
        ))  # fmt: skip
        message = Message(
            topic=topic,
            payload=event,
            qos=1,
            content_type=CLOUDEVENTS_CONTENT_TYPE,
            user_properties=envelope.to_user_properties(),
        )
    if len(message.payload) > MAX_NOTIFICATION_BYTES:
        raise ProtocolError(_too_large("notification", len(message.payload)))
    return message


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
    kind = (content_type or "").partition(";")[0].strip().lower()
    if kind != CLOUDEVENTS_CONTENT_TYPE and not (kind == "" and b'"specversion"' in payload):
        return _decode(PushNotification, payload, "push notification")
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
