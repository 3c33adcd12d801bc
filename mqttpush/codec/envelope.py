"""The envelope: metadata in MQTT 5 user properties beside every payload, and its limits."""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mqttpush.address import is_mqtt_text

if TYPE_CHECKING:
    from pydantic import ValidationError

    from mqttpush.transport.base import Message

__all__ = [
    "CONTENT_TYPE",
    "CORRELATION_ID",
    "OPERATION",
    "PRIORITY",
    "SENDER",
    "TOKEN",
    "TRACE_ID",
    "Envelope",
    "correlation_and_trace",
    "remaining_expiry",
    "validation_detail",
]

CONTENT_TYPE = "application/json"

# User property names of the envelope metadata (docs/protocol.md, "Envelope").
SENDER = "mqttpush-sender"
OPERATION = "mqttpush-op"
CORRELATION_ID = "mqttpush-cid"
TRACE_ID = "mqttpush-trace"
TOKEN = "mqttpush-token"  # noqa: S105 - a user property name, not a secret
PRIORITY = "mqttpush-priority"
_MAX_PROPERTY = 1024  # bytes of one envelope value


#: Validation errors listed in an error's ``data``; the rest are counted in one more entry.
MAX_VALIDATION_ERRORS = 100
#: Characters of one ``loc`` element (a field name from the request) kept in ``data``.
MAX_LOC_CHARS = 256


def _loc_part(part: str | int) -> str | int:
    if isinstance(part, str) and len(part) > MAX_LOC_CHARS:
        return part[:MAX_LOC_CHARS] + "…"
    return part


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """Return pydantic's errors as plain JSON (no URLs, no exception objects, no inputs).

    At most :data:`MAX_VALIDATION_ERRORS` are listed and names are cut to
    :data:`MAX_LOC_CHARS`, so the error reply stays small whatever the request held.
    """
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    detail: list[dict[str, Any]] = [
        {"loc": [_loc_part(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in errors[:MAX_VALIDATION_ERRORS]
    ]
    if len(errors) > MAX_VALIDATION_ERRORS:
        more = len(errors) - MAX_VALIDATION_ERRORS
        detail.append(
            {"loc": [], "msg": f"{more} more errors not listed", "type": "too_many_errors"}
        )
    return detail


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
        sender, operation = self.sender, self.operation
        if _short(sender) and _short(operation):
            kept = _leading(sender, operation)  # the same on most messages: kept
        else:  # a value this long is left out; it never becomes a key of the cache
            kept = _leading.__wrapped__(sender, operation)
        correlation_id, trace_id, token, priority = (
            self.correlation_id, self.trace_id, self.token, self.priority
        )  # fmt: skip
        if correlation_id is not None and _fits_ascii(correlation_id):
            kept += ((CORRELATION_ID, correlation_id),)
        if trace_id is not None and _fits_ascii(trace_id):
            kept += ((TRACE_ID, trace_id),)
        if token is not None and _fits_ascii(token):
            kept += ((TOKEN, token),)
        if priority is not None and _fits_ascii(priority):
            kept += ((PRIORITY, priority),)
        return kept + self.headers if self.headers else kept

    @classmethod
    def of(cls, message: Message) -> Envelope:
        """Read the envelope from a received message (the first value of a repeated name)."""
        pairs = message.user_properties
        if not pairs:
            return _EMPTY
        try:
            found = _parsed.get(pairs)
        except TypeError:  # not hashable (a list among them): read, not kept
            found = None
        if found is not None:
            return found
        values: dict[str, str] = {}
        for name, value in pairs:  # one pass; the first of a repeated name counts
            if name in _FIELDS and name not in values:
                values[name] = value
        get = values.get
        envelope = cls(
            get(SENDER), get(OPERATION), get(CORRELATION_ID), get(TRACE_ID), get(TOKEN),
            get(PRIORITY),
        )  # fmt: skip
        # Kept unless something in it differs per message: an id, a trace context. A
        # trace id is a task's: the same on each of its notifications.
        if len(values) == len(pairs) and CORRELATION_ID not in values:
            if len(_parsed) >= _ENVELOPES_KEPT:
                _parsed.clear()
            with contextlib.suppress(TypeError):
                _parsed[pairs] = envelope
        return envelope


def correlation_and_trace(message: Message) -> tuple[str | None, str | None]:
    """The ``mqttpush-cid`` and ``mqttpush-trace`` of a received message (first values).

    All a reply needs of its request's envelope, read without building one.
    """
    correlation_id = trace_id = None
    for name, value in message.user_properties:
        if name == CORRELATION_ID:
            if correlation_id is None:
                correlation_id = value
        elif name == TRACE_ID and trace_id is None:
            trace_id = value
    return correlation_id, trace_id


_FIELDS = frozenset((SENDER, OPERATION, CORRELATION_ID, TRACE_ID, TOKEN, PRIORITY))
_EMPTY = Envelope()
# The envelopes of recent messages by their user properties: a sender's notifications
# and receipts repeat theirs. Bounded.
_ENVELOPES_KEPT = 256
_parsed: dict[tuple[tuple[str, str], ...], Envelope] = {}


@functools.lru_cache(maxsize=4096)  # a sender's messages repeat its address and operation
def _leading(sender: str | None, operation: str | None) -> tuple[tuple[str, str], ...]:
    pairs = ((SENDER, sender), (OPERATION, operation))
    return tuple((k, v) for k, v in pairs if v is not None and _fits_ascii(v))


def _short(value: str | None) -> bool:
    """Short enough to be sent, so to be a key of a kept envelope (bounds its bytes)."""
    return value is None or len(value) <= _MAX_PROPERTY


def _fits_ascii(value: str) -> bool:
    # Ids and trace ids differ per message: ASCII is checked in C, without the cache.
    if value.isascii():
        return len(value) <= _MAX_PROPERTY and value.isprintable()
    return len(value) <= _MAX_PROPERTY and _fits(value)  # a longer one is never kept


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
