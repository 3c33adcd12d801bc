"""One notification, as each endpoint of its task gets it: filtered, in its format.

An endpoint whose filter refuses the notification gets nothing (and nothing is tracked
for it); the others get it in their chosen format (mqttpush's own JSON, or a
CloudEvent), with their token and the priority in user properties.

A task sends many notifications to the same endpoints: each endpoint's topic and user
properties are the same every time (unless a trace context travels with each), so they
are kept, in bounded caches, rather than built again for every notification.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from mqttpush import codec
from mqttpush.address import Address
from mqttpush.models import PushFormat

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mqttpush.address import Topics
    from mqttpush.models import PushNotification, TaskPushNotificationConfig
    from mqttpush.transport.base import Message

__all__ = ["Fanout", "fan_out"]


class Fanout:
    """The messages of one notification (endpoint -> message) and the rates to respect."""

    __slots__ = ("messages", "rates")

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self.rates: dict[str, float] = {}


def fan_out(
    notification: PushNotification,
    endpoints: Iterable[TaskPushNotificationConfig],
    *,
    sender: str,
    trace_id: str | None,
    topics: Topics,
    headers: tuple[tuple[str, str], ...] = (),
) -> Fanout:
    """Build the message each endpoint gets, leaving out those whose filter refuses it.

    ``headers`` are the trace context (``traceparent``, ``tracestate``) to carry.
    """
    out = Fanout()
    priority = notification.priority.value
    task_id = notification.task_id
    for config in endpoints:
        if config.filter is not None and not config.filter.matches(notification):
            continue
        cloudevents = config.format is PushFormat.CLOUDEVENTS
        if headers or (trace_id is not None and len(trace_id) > _TRACE_KEPT):
            # a trace context per notification, or a trace id too long to send: not kept
            envelope = codec.Envelope(sender, "push", None, trace_id, config.token, priority,
                                      headers)  # fmt: skip
            properties = envelope.to_user_properties()
        else:
            properties = _properties(sender, trace_id, config.token, priority)
        out.messages[config.address] = codec.encode_push(
            _topic(topics, config.address, task_id),
            notification,
            properties,
            cloudevents_source=sender if cloudevents else None,
        )
        if config.rate is not None:
            out.rates[config.address] = config.rate
    return out


#: The longest trace id the kept properties are keyed by (a longer one is not sent).
_TRACE_KEPT = 1024


@functools.lru_cache(maxsize=4096)
def _topic(topics: Topics, address: str, task_id: str) -> str:
    return topics.push(Address.parse(address), task_id)


@functools.lru_cache(maxsize=1024)
def _properties(
    sender: str, trace_id: str | None, token: str | None, priority: str
) -> tuple[tuple[str, str], ...]:
    return codec.Envelope(sender, "push", None, trace_id, token, priority).to_user_properties()
