"""OpenTelemetry tracing (the ``tracing`` extra: opentelemetry-api).

Spans follow OpenTelemetry's messaging and RPC semantic conventions: a CLIENT span per
call and a SERVER span per answered request (``rpc.system`` ``jsonrpc``), a PRODUCER
span per notification sent and a CONSUMER span per notification processed
(``messaging.system`` ``mqtt``). The W3C trace context travels in the MQTT 5 user
properties ``traceparent`` and ``tracestate``; a received context is the parent of the
span that handles the message, so one trace covers a flow across processes. Which
SDK, sampler and exporter record the spans is the application's choice (the global
tracer provider); without an SDK the API records nothing.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from mqttpush.observe.tracing import Tracing

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.context import Context

    from mqttpush.observe.tracing import Headers
    from mqttpush.transport.base import Message

__all__ = ["OtelTracing"]

_CARRIED = ("traceparent", "tracestate")


def _inject() -> Headers:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((k, carrier[k]) for k in _CARRIED if k in carrier)


def _extract(message: Message) -> Context | None:
    carrier = {k: v for k in _CARRIED if (v := message.user_property(k)) is not None}
    return propagate.extract(carrier) if carrier else None


def _messaging(
    operation: str, kind: str, destination: str, size: int | None = None
) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "messaging.system": "mqtt",
        "messaging.operation.name": operation,
        "messaging.operation.type": kind,
        "messaging.destination.name": destination,
    }
    if size is not None:
        attributes["messaging.message.body.size"] = size
    return attributes


class OtelTracing(Tracing):
    """Spans through the global OpenTelemetry tracer provider.

    Args:
        client_id: The MQTT client id, recorded as ``messaging.client.id``.
        tracer_provider: Where spans go; the global provider when omitted.
    """

    def __init__(
        self, client_id: str | None = None, tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self._tracer = trace.get_tracer("mqttpush", tracer_provider=tracer_provider)
        self._client_id = client_id

    def _common(self, attributes: dict[str, str | int]) -> dict[str, str | int]:
        if self._client_id is not None:
            attributes["messaging.client.id"] = self._client_id
        return attributes

    @contextlib.contextmanager
    def rpc_client(self, method: str, topic: str, correlation_id: str) -> Iterator[Headers]:
        """A CLIENT span for one call; its context travels with the request."""
        attributes = self._common(_messaging("publish", "send", topic))
        attributes.update(
            {
                "rpc.system": "jsonrpc",
                "rpc.method": method,
                "rpc.jsonrpc.version": "2.0",
                "rpc.jsonrpc.request_id": correlation_id,
                "messaging.message.conversation_id": correlation_id,
            }
        )
        with self._tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                yield _inject()
            except Exception as exc:
                code = getattr(exc, "code", None)
                if isinstance(code, int):
                    span.set_attribute("rpc.jsonrpc.error_code", code)
                raise

    @contextlib.contextmanager
    def rpc_server(self, message: Message, method: str | None, agent: str) -> Iterator[None]:
        """A SERVER span for one request, child of the caller's span."""
        attributes = self._common(_messaging("process", "process", message.topic,
                                             len(message.payload)))  # fmt: skip
        attributes.update(
            {"rpc.system": "jsonrpc", "rpc.jsonrpc.version": "2.0", "rpc.service": agent}
        )
        if method is not None:
            attributes["rpc.method"] = method
        with self._tracer.start_as_current_span(
            method or "jsonrpc", context=_extract(message), kind=SpanKind.SERVER,
            attributes=attributes,
        ):  # fmt: skip
            yield

    @contextlib.contextmanager
    def publish(self, destination: str, notification_id: str, endpoints: int) -> Iterator[Headers]:
        """A PRODUCER span for one notification (all its endpoints)."""
        attributes = self._common(_messaging("send", "send", destination))
        attributes["messaging.message.id"] = notification_id
        attributes["messaging.batch.message_count"] = endpoints
        with self._tracer.start_as_current_span(
            f"send {destination}", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            yield _inject()

    @contextlib.contextmanager
    def process(self, message: Message, notification_id: str, agent: str) -> Iterator[None]:
        """A CONSUMER span for handling one notification, child of its PRODUCER span."""
        destination = message.topic.rpartition("/")[0] + "/{task_id}"
        attributes = self._common(
            _messaging("process", "process", destination, len(message.payload))
        )
        attributes["messaging.message.id"] = notification_id
        attributes["messaging.consumer.group.name"] = agent
        with self._tracer.start_as_current_span(
            f"process {destination}", context=_extract(message), kind=SpanKind.CONSUMER,
            attributes=attributes,
        ) as span:  # fmt: skip
            try:
                yield
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        """An INTERNAL span, current while the block runs."""
        with self._tracer.start_as_current_span(name):
            yield
