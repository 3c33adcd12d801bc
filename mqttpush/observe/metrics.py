"""The metrics seam: events the library reports, and queues it lets a collector read.

The defaults do nothing, so an uninstrumented agent pays one empty method call per
event. Hot-path events (a notification sent, received, a receipt) are plain calls;
depths and sizes are read only when a collector asks (:meth:`Metrics.watch`), so
keeping them costs nothing between scrapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from mqttpush.models import DeliveryState, TaskState

__all__ = ["AgentMetrics", "Metrics", "QueueReading"]

#: A queue's reading: its depth (items) and its size in bytes (None when not known).
QueueReading = tuple[int, int | None]


class AgentMetrics:
    """What one served agent reports; this default records nothing."""

    __slots__ = ()

    def notification_sent(self, endpoints: int) -> None:
        """A notification was queued for ``endpoints`` endpoints (one delivery each)."""

    def delivery_moved(self, state: DeliveryState) -> None:
        """A delivery reached ``state`` (published, delivered, failed or expired)."""

    def delivery_latency(self, seconds: float) -> None:
        """A delivery's first publish was answered by a receipt after ``seconds``."""

    def resent(self) -> None:
        """A notification was published again for want of a receipt."""

    def notification_received(self, outcome: str, sent_at: datetime | None = None) -> None:
        """A notification arrived: handled, duplicate, failed, rejected or malformed.

        ``sent_at`` is the notification's own timestamp, for the end-to-end latency
        (set for handled ones).
        """

    def request_served(self, method: str, outcome: str, seconds: float) -> None:
        """A request was answered: ``outcome`` is ``ok`` or the JSON-RPC error code."""

    def task_ended(self, state: TaskState) -> None:
        """A task of this agent reached a terminal state."""


_NO_AGENT = AgentMetrics()


class Metrics:
    """What a fabric reports; this default records nothing."""

    def agent(self, address: str) -> AgentMetrics:
        """The metrics of the agent served at ``address``."""
        del address
        return _NO_AGENT

    def call_done(self, method: str, outcome: str, seconds: float) -> None:
        """A call this process made ended: ``ok``, an error code, ``timeout`` or ``connection``."""

    def reconnected(self, *, session_lost: bool) -> None:
        """The connection came back (``session_lost``: without the broker's session)."""

    def message_held(self) -> None:
        """A message arrived before its agent was served, and waits for it."""

    def message_dropped(self, reason: str) -> None:
        """A message was dropped (acknowledged and not handled), for ``reason``."""

    def watch(self, queue: str, agent: str, read: Callable[[], QueueReading]) -> None:
        """Read the depth and size of ``queue`` (of ``agent``, or ``""``) when collected."""

    def watch_window(self, agent: str, read: Callable[[], Mapping[str, int]]) -> None:
        """Read ``agent``'s delivery window occupancy (endpoint -> awaiting receipt)."""
