"""The tracing seam: spans around RPC calls and notifications, context in user properties.

The default opens no spans and adds no properties. :class:`~mqttpush.observe.otel.OtelTracing`
(the ``tracing`` extra) opens OpenTelemetry spans and carries the W3C ``traceparent`` and
``tracestate`` in MQTT 5 user properties, so a trace follows a flow across processes.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from mqttpush.transport.base import Message

__all__ = ["Headers", "Tracing"]

#: User properties that carry a trace context (``traceparent``, ``tracestate``).
Headers = tuple[tuple[str, str], ...]


_NO_HEADERS: contextlib.nullcontext[Headers] = contextlib.nullcontext(())
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


class Tracing:
    """No tracing: every span is a no-op and no context travels.

    The context managers are shared and reused, so tracing off costs the hot path two
    method calls per message, nothing more.
    """

    def rpc_client(
        self, method: str, topic: str, correlation_id: str
    ) -> AbstractContextManager[Headers]:
        """A call to ``method`` on ``topic``: yields the properties to send with the request."""
        del method, topic, correlation_id
        return _NO_HEADERS

    def rpc_server(
        self, message: Message, method: str | None, agent: str
    ) -> AbstractContextManager[None]:
        """Answering the request ``message`` (its context, if any, is the parent)."""
        del message, method, agent
        return _NOTHING

    def publish(
        self, destination: str, notification_id: str, endpoints: int
    ) -> AbstractContextManager[Headers]:
        """Sending one notification to ``endpoints`` endpoints; yields the properties to send."""
        del destination, notification_id, endpoints
        return _NO_HEADERS

    def process(
        self, message: Message, notification_id: str, agent: str
    ) -> AbstractContextManager[None]:
        """Handling the notification ``message`` (its context, if any, is the parent)."""
        del message, notification_id, agent
        return _NOTHING

    def span(self, name: str) -> AbstractContextManager[None]:
        """An internal span around work that spans several calls (a client's whole run)."""
        del name
        return _NOTHING
