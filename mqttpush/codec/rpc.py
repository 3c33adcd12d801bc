"""JSON-RPC 2.0 over MQTT 5: requests and replies to and from bytes and properties."""

from __future__ import annotations

import functools
import json
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import pydantic_core
from pydantic import ValidationError

from mqttpush.errors import (
    InvalidParamsError,
    InvalidRequestError,
    ParseError,
    ProtocolError,
    RpcError,
)
from mqttpush.models import (
    JsonRpcError,
    JsonRpcRequest,
    JsonRpcResponse,
)
from mqttpush.transport.base import Message

if TYPE_CHECKING:
    from mqttpush.models import JsonRpcId
from mqttpush.codec.envelope import CONTENT_TYPE, Envelope, remaining_expiry, validation_detail

__all__ = [
    "Reply",
    "Request",
    "decode_request",
    "decode_response",
    "encode_reply",
    "encode_request",
    "read_request",
    "read_response",
]

_ID_ERROR = {"loc": ["id"], "msg": "id must be a string, an integer or null", "type": "id_type"}
_SURROGATE = "lone surrogate escape (\\ud800-\\udfff without its pair): not valid Unicode"


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


class Request(NamedTuple):
    """A request that passed every check: what an agent needs to run it."""

    id: JsonRpcId
    method: str
    params: dict[str, Any] | list[Any] | None


_MEMBERS = frozenset(("jsonrpc", "id", "method", "params"))
_new_request = functools.partial(tuple.__new__, Request)  # a third of Request()'s cost


def decode_request(
    payload: bytes, max_bytes: int | None = None
) -> tuple[JsonRpcId, JsonRpcRequest | RpcError]:
    """Decode a request payload into the wire model (see :func:`read_request`)."""
    request_id, read = read_request(payload, max_bytes)
    if isinstance(read, RpcError):
        return request_id, read
    body = {"jsonrpc": "2.0", "id": read.id, "method": read.method, "params": read.params}
    return request_id, JsonRpcRequest.model_validate(body)


def read_request(
    payload: bytes, max_bytes: int | None = None
) -> tuple[JsonRpcId, Request | RpcError]:
    """Read a request payload.

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
    try:
        obj = pydantic_core.from_json(payload)
    except ValueError as exc:
        obj = _with_lone_surrogates(payload, exc)
        if obj is None:
            return None, ParseError(data={"detail": str(exc)})
        return _check_request(obj, _lone_surrogate_at(obj))
    request = _plain_request(obj)
    if request is not None:
        return request.id, request
    return _check_request(obj, None)  # the model says what is wrong


def _plain_request(obj: Any) -> Request | None:  # noqa: ANN401 - any JSON
    """``obj`` as a request when it plainly is one (the common case), else None.

    Accepts only what :class:`JsonRpcRequest` accepts; anything else, valid or not, is
    left to the model, so the model alone says what an invalid request gets.
    """
    if type(obj) is not dict or obj.get("jsonrpc") != "2.0":
        return None
    method = obj.get("method")
    if type(method) is not str or not method or not obj.keys() <= _MEMBERS:
        return None
    params, request_id = obj.get("params"), obj.get("id")
    if (params is None or type(params) is dict or type(params) is list) and (
        request_id is None or type(request_id) is str or type(request_id) is int
    ):
        return _new_request((request_id, method, params))
    return None


def _check_request(
    obj: Any,  # noqa: ANN401 - any JSON
    surrogate: list[str | int] | None,
) -> tuple[JsonRpcId, Request | RpcError]:
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
        request = JsonRpcRequest.model_validate(obj)
    except ValidationError as exc:
        return request_id, InvalidRequestError(data=validation_detail(exc))
    return request_id, Request(request.id, request.method, request.params)


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


class Reply(NamedTuple):
    """What a caller takes from a response: its result, or its error."""

    result: Any
    error: JsonRpcError | None = None


_RESULT_MEMBERS = frozenset(("jsonrpc", "id", "result"))
_new_reply = functools.partial(tuple.__new__, Reply)


def read_response(payload: bytes) -> Reply:
    """Read a response payload: a plain result at once, anything else through the model.

    Raises:
        ProtocolError: Not a JSON-RPC 2.0 response object.
    """
    try:
        obj = pydantic_core.from_json(payload)
    except ValueError:
        obj = None
    if (
        type(obj) is dict
        and obj.keys() == _RESULT_MEMBERS
        and obj["jsonrpc"] == "2.0"
        and (obj["id"] is None or type(obj["id"]) is str or type(obj["id"]) is int)
    ):
        return _new_reply((obj["result"], None))
    response = decode_response(payload)  # says what is wrong, or reads an error
    return Reply(response.result, response.error)
