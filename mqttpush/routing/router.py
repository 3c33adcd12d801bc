"""The router: which handler takes a message on which topic, and messages held for later.

A resumed session delivers its queued messages right after connecting, before the
process has served its agents. Those wait here, unacknowledged, for up to
``hold_seconds``, and are handed out again once a handler for them is added; past that
they expire (and are dropped, acknowledged and counted by the message loop).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.transport.base import Message

__all__ = ["Lane", "Route", "Router"]


class Lane(enum.IntEnum):
    """The inbound lanes, served in this order (:class:`~mqttpush.routing.MessageLoop`)."""

    CONTROL = 0  #: requests and replies: handled as soon as they are read
    RECEIPTS = 1  #: delivery receipts: they move a sender's windows
    NOTIFICATIONS = 2  #: push notifications: the bulk of the traffic


@dataclass(frozen=True, slots=True)
class Route:
    """Where messages on a topic go.

    Attributes:
        handle: The handler; the message is acknowledged once it returns (or raises).
        concurrent: Run the handlers in tasks apart from the loop, so slow handlers do
            not hold up the others (a handler that waits leaves the next messages to
            another task; handlers that share a task share its context variables);
            otherwise the loop awaits it (keep those short).
        lane: Which inbound lane its messages take: the messages already read are handled
            lane by lane, each lane in the order its messages came.
    """

    handle: Callable[[Message], Awaitable[None]]
    concurrent: bool = False
    lane: Lane = Lane.CONTROL


class Router:
    """Routes by exact topic, or by a topic's parent (``{prefix}/{one level}``).

    Args:
        on_expired: Called with each held message whose time ran out.
        hold_seconds: How long a message waits for its handler to be added.
        hold_max: Messages held at most; more are not held.
        hold_max_bytes: Payload bytes held at most; a message that would pass it is not held.
    """

    def __init__(
        self,
        on_expired: Callable[[Message], None],
        *,
        hold_seconds: float = 5.0,
        hold_max: int = 10_000,
        hold_max_bytes: int = 16 << 20,
    ) -> None:
        self._exact: dict[str, Route] = {}
        self._by_parent: dict[str, Route] = {}
        self._held: collections.deque[Message] = collections.deque()
        self._on_expired = on_expired
        self._hold_seconds = hold_seconds
        self._hold_max = hold_max
        self._hold_max_bytes = hold_max_bytes
        self._held_bytes = 0

    def add(self, topic: str, route: Route) -> None:
        """Route messages on ``topic`` itself."""
        self._exact[topic] = route

    def add_children(self, parent: str, route: Route) -> None:
        """Route messages on every topic one level below ``parent``."""
        self._by_parent[parent] = route

    def routes(self, topic: str) -> bool:
        """Whether messages on exactly ``topic`` have a route."""
        return topic in self._exact

    def find(self, topic: str) -> Route | None:
        """The route of a message on ``topic``, if any."""
        route = self._exact.get(topic)
        if route is None:
            route = self._by_parent.get(topic.rpartition("/")[0])
        return route

    def hold(self, message: Message) -> bool:
        """Keep a message that has no route yet; False when there is no room."""
        self._expire()
        if len(self._held) >= self._hold_max:
            return False
        if self._held_bytes + len(message.payload) > self._hold_max_bytes:
            return False
        if not self._held:  # check again once this one is due, even if nothing else arrives
            asyncio.get_running_loop().call_later(self._hold_seconds + 0.1, self._expire)
        self._held.append(message)
        self._held_bytes += len(message.payload)
        return True

    @property
    def held_bytes(self) -> int:
        """Payload bytes of the messages held."""
        return self._held_bytes

    def held(self) -> tuple[int, int]:
        """Messages held now, and their payload bytes."""
        return len(self._held), sum(len(m.payload) for m in self._held)

    def release(self) -> list[Message]:
        """Hand back every held message (after routes were added), oldest first."""
        held, self._held = list(self._held), collections.deque()
        self._held_bytes = 0
        return held

    def _expire(self) -> None:
        now = time.monotonic()
        while self._held and (now - self._held[0].received_at > self._hold_seconds):
            expired = self._held.popleft()
            self._held_bytes -= len(expired.payload)
            self._on_expired(expired)
        if self._held:
            due = self._held[0].received_at + self._hold_seconds - now
            asyncio.get_running_loop().call_later(max(due, 0) + 0.1, self._expire)
