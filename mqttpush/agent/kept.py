"""The sender's records of its deliveries, per task, and how they shrink once a task settles.

A running task keeps one :class:`~mqttpush.agent.tracked.TrackedDelivery` per notification
and endpoint. Once the task has ended and every one of them is final, the task is
*folded*: its records go and only its counts per state stay (a handful of integers),
until the task itself is forgotten. The store keeps the rows for ``get_delivery_status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqttpush.agent.tracked import TrackedDelivery
    from mqttpush.models import DeliveryInfo, DeliveryState

__all__ = ["KeptDeliveries"]


class KeptDeliveries:
    """Delivery records by task, how many of each task are not final, and folded counts."""

    def __init__(self) -> None:
        self._tasks: dict[str, dict[tuple[str, str], TrackedDelivery]] = {}
        self._pending: dict[str, int] = {}  # per task, deliveries not final yet
        self._ended: set[str] = set()  # tasks ended whose records are not folded yet
        self._folded: dict[str, dict[DeliveryState, int]] = {}

    def add(self, delivery: TrackedDelivery) -> None:
        """Keep a new delivery (not final yet)."""
        task_id = delivery.task_id
        self._tasks.setdefault(task_id, {})[(delivery.notification_id, delivery.endpoint)] = (
            delivery
        )
        self._pending[task_id] = self._pending.get(task_id, 0) + 1

    def find(self, task_id: str, notification_id: str, endpoint: str) -> TrackedDelivery | None:
        """The record of one delivery, or None (unknown, or its task folded or forgotten)."""
        per_task = self._tasks.get(task_id)
        return None if per_task is None else per_task.get((notification_id, endpoint))

    def settled_one(self, task_id: str) -> bool:
        """Count one delivery of the task as final; say whether the task may fold now."""
        left = self._pending.get(task_id, 0) - 1
        if task_id in self._tasks:
            self._pending[task_id] = left
        return not left and task_id in self._ended

    def end(self, task_id: str) -> bool:
        """Note that the task sent its last notification; say whether it may fold now."""
        if task_id not in self._tasks:
            return False
        self._ended.add(task_id)
        return not self._pending.get(task_id)

    def fold(self, task_id: str) -> bool:
        """Keep only an ended, settled task's counts per state; say whether it folded."""
        if task_id not in self._ended or self._pending.get(task_id):
            return False  # forgotten meanwhile, or sending again
        self._folded[task_id] = self.summary(task_id)
        del self._tasks[task_id]
        self._pending.pop(task_id, None)
        self._ended.discard(task_id)
        return True

    def pop(self, task_id: str) -> list[TrackedDelivery]:
        """Forget a task entirely; return its delivery records."""
        self._pending.pop(task_id, None)
        self._ended.discard(task_id)
        self._folded.pop(task_id, None)
        return list(self._tasks.pop(task_id, {}).values())

    def pending(self, task_id: str) -> int:
        """Deliveries of a task not yet in a final state."""
        return self._pending.get(task_id, 0)

    def status(self, task_id: str) -> list[DeliveryInfo]:
        """Every delivery record of a task, by sequence number then endpoint."""
        deliveries = self._tasks.get(task_id, {}).values()
        return [d.to_info() for d in sorted(deliveries, key=lambda d: (d.seq, d.endpoint))]

    def summary(self, task_id: str) -> dict[DeliveryState, int]:
        """How many deliveries of a task are in each state (folded tasks included)."""
        folded = self._folded.get(task_id)
        if folded is not None:
            return dict(folded)
        counts: dict[DeliveryState, int] = {}
        for delivery in self._tasks.get(task_id, {}).values():
            counts[delivery.state] = counts.get(delivery.state, 0) + 1
        return counts

    def tracked(self) -> set[str]:
        """Task ids with per-delivery records."""
        return set(self._tasks)

    def folded(self) -> set[str]:
        """Task ids folded to their counts."""
        return set(self._folded)

    def records(self) -> int:
        """Per-delivery records kept, all tasks together."""
        return sum(len(per_task) for per_task in self._tasks.values())
