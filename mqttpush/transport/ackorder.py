"""PUBACKs in the order their PUBLISHes came, as MQTT 5 requires [MQTT-4.6.0-2].

Messages are handled concurrently and out of order (a request is served before the
notifications read ahead of it), but a client must send its PUBACKs in the order the
QoS 1 PUBLISHes were received. :class:`AckOrder` keeps that order: a message handled
early is acknowledged once every message received before it has been.

A message that is never acknowledged (its handler still runs) holds back the PUBACKs of
those after it, not their handling; the broker's Receive Maximum then bounds how many
more it sends.
"""

from __future__ import annotations

from collections import deque

__all__ = ["AckOrder"]


class AckOrder:
    """The packet ids of received QoS 1 messages not yet acknowledged, in receive order."""

    __slots__ = ("_done", "_due", "_waiting")

    def __init__(self) -> None:
        self._due: deque[int] = deque()
        self._waiting: set[int] = set()  # the ids in ``_due``
        self._done: set[int] = set()  # handled, waiting for an earlier one

    def __len__(self) -> int:
        return len(self._due)

    def received(self, packet_id: int) -> None:
        """A QoS 1 message with ``packet_id`` was taken in (call in receive order)."""
        if packet_id not in self._waiting:  # the broker reuses an id only once acknowledged
            self._due.append(packet_id)
            self._waiting.add(packet_id)

    def handled(self, packet_id: int) -> list[int]:
        """The message ``packet_id`` was handled: the ids whose PUBACK may go now, in order."""
        due = self._due
        if packet_id not in self._waiting:
            return []
        if due[0] != packet_id:
            self._done.add(packet_id)
            return []
        ready = [due.popleft()]
        self._waiting.discard(packet_id)
        done = self._done
        while due and due[0] in done:
            next_id = due.popleft()
            done.discard(next_id)
            self._waiting.discard(next_id)
            ready.append(next_id)
        return ready
