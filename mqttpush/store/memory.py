"""The in-memory task store: the default, and the double the contract tests run against.

Nothing survives the process. Finished tasks, with their endpoints and delivery rows,
are kept within a count and a byte bound (``agent.max_finished_tasks``,
``agent.max_finished_bytes``), oldest first, beside :meth:`MemoryTaskStore.prune`.
Params and results are kept as JSON; a delivery row counts :data:`ROW_BYTES`. Leases
and sequence numbers follow the port's rules within the one process that has it.
"""

from __future__ import annotations

import collections
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pydantic_core

from mqttpush.errors import StoreError
from mqttpush.store.base import (
    Delivery,
    DeliveryState,
    Lease,
    StoredTask,
    TakenOver,
    TaskStore,
)
from mqttpush.store.ledger import FinishedLedger
from mqttpush.store.memory_replies import MemoryReplies, Replies
from mqttpush.store.records import check_lease_args

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mqttpush.models import TaskPushNotificationConfig

__all__ = ["ROW_BYTES", "MemoryTaskStore"]

#: What one delivery row costs this store, as counted against its byte bound: measured
#: 337 bytes with tracemalloc (row, timestamp, keys, two dict entries) and the
#: notification id it keeps alive, rounded up.
ROW_BYTES = 400


class MemoryTaskStore(MemoryReplies, TaskStore):
    """A :class:`~mqttpush.store.TaskStore` kept in dicts.

    Args:
        max_finished: Finished tasks kept; the oldest finished go first.
        max_finished_bytes: Bytes of finished tasks kept: their params, results and
            errors as JSON and :data:`ROW_BYTES` per delivery row; the oldest finished
            go first, except the one that finished last.
    """

    def __init__(
        self, max_finished: int | None = None, max_finished_bytes: int | None = None
    ) -> None:
        # Dicts keep insertion order, and replacing a value keeps its key's place:
        # that is the tie-break order (tasks) and registration order (endpoints).
        self._tasks: dict[str, StoredTask] = {}  # params and result in _json
        self._json: dict[str, tuple[bytes, bytes]] = {}
        self._finished = FinishedLedger(max_finished, max_finished_bytes)
        self._endpoints: dict[str, dict[str, TaskPushNotificationConfig]] = {}
        self._deliveries: dict[str, dict[tuple[str, str], Delivery]] = {}
        self._delivery_task: dict[tuple[str, str], str] = {}
        self._leases: dict[str, Lease] = {}
        self._replies = Replies()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the task store is closed")

    async def save_task(self, task: StoredTask) -> None:
        """Insert ``task``, or replace the task with the same id."""
        self._check_open()
        previous = self._tasks.get(task.task_id)
        # Keep the JSON form, as a durable store would: no aliasing, same values back.
        params, result = pydantic_core.to_json(task.params), pydantic_core.to_json(task.result)
        self._json[task.task_id] = params, result
        self._tasks[task.task_id] = dataclasses.replace(
            task,
            params=None,
            result=None,
            pushed=task.pushed if previous is None else max(task.pushed, previous.pushed),
        )
        self._count_finished(task.task_id)

    def _count_finished(self, task_id: str) -> None:
        """Count a task's bytes if it is finished (as the newest), then keep the bounds."""
        self._finished.forget(task_id)
        task = self._tasks[task_id]
        if task.state.is_terminal:
            params, result = self._json[task_id]
            error = 0 if task.error is None else len(task.error.model_dump_json())
            rows = len(self._deliveries.get(task_id, ()))
            self._finished.set(task_id, len(params) + len(result) + error + rows * ROW_BYTES)
            self._trim()

    def _trim(self) -> None:
        while (task_id := self._finished.over()) is not None:
            self._drop(task_id)
        # The last task stays, not rows that alone pass the bound (too long for a reply).
        if (task_id := self._finished.alone_over()) is not None and self._deliveries.get(task_id):
            rows = self._deliveries.pop(task_id)
            for key in rows:
                del self._delivery_task[key]
            self._finished.grow(task_id, -len(rows) * ROW_BYTES)

    @property
    def finished_bytes(self) -> int:
        """Bytes of the finished tasks kept, as counted against ``max_finished_bytes``."""
        return self._finished.bytes

    def _full(self, task_id: str) -> StoredTask:
        params, result = self._json[task_id]
        return dataclasses.replace(
            self._tasks[task_id],
            params=pydantic_core.from_json(params),
            result=pydantic_core.from_json(result),
        )

    async def get_task(self, task_id: str) -> StoredTask | None:
        """Return the task with this id, or None."""
        self._check_open()
        return self._full(task_id) if task_id in self._tasks else None

    async def unfinished_tasks(self) -> list[StoredTask]:
        """Return the tasks whose state is not terminal, oldest first."""
        self._check_open()
        unfinished = [
            self._full(task_id)
            for task_id, task in self._tasks.items()
            if not task.state.is_terminal
        ]
        return sorted(unfinished, key=lambda task: task.created_at)  # stable: ties keep order

    async def save_endpoint(self, config: TaskPushNotificationConfig) -> None:
        """Insert an endpoint, or replace the one with the same task id and address."""
        self._check_open()
        self._endpoints.setdefault(config.task_id, {})[config.address] = config

    async def endpoints(self, task_id: str) -> list[TaskPushNotificationConfig]:
        """Return the endpoints registered for a task, in registration order."""
        self._check_open()
        return list(self._endpoints.get(task_id, {}).values())

    async def forget_endpoints(self, task_id: str) -> None:
        """Delete every endpoint registered for a task."""
        self._check_open()
        self._endpoints.pop(task_id, None)

    async def save_delivery(self, delivery: Delivery) -> None:
        """Insert a delivery, or replace the one with the same notification id and endpoint."""
        self._check_open()
        self._save_delivery(delivery)

    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Save several deliveries, in order (no await between them: nothing to wait for)."""
        self._check_open()
        for delivery in deliveries:
            self._save_delivery(delivery)

    def _save_delivery(self, delivery: Delivery) -> None:
        key = (delivery.notification_id, delivery.endpoint)
        previous_task = self._delivery_task.get(key)
        if previous_task is not None and previous_task != delivery.task_id:
            self._deliveries[previous_task].pop(key, None)
        self._delivery_task[key] = delivery.task_id
        rows = self._deliveries.setdefault(delivery.task_id, {})
        new = key not in rows
        rows[key] = delivery
        # A late row of a finished task counts with it; a row of a task this store does
        # not keep (dropped by the bounds, or never saved) counts as one of its own.
        if new and (delivery.task_id in self._finished or delivery.task_id not in self._tasks):
            self._finished.grow(delivery.task_id, ROW_BYTES)
            self._trim()

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Return a task's deliveries, ordered by ``seq``, then ``endpoint``."""
        self._check_open()
        rows = self._deliveries.get(task_id, {}).values()
        return sorted(rows, key=lambda row: (row.seq, row.endpoint))

    async def delivery_summary(self, task_id: str) -> dict[DeliveryState, int]:
        """Return how many of a task's deliveries are in each state."""
        self._check_open()
        counts = collections.Counter(
            row.state for row in self._deliveries.get(task_id, {}).values()
        )
        return {state: counts[state] for state in DeliveryState if counts[state]}

    async def prune(self, keep_finished: int) -> int:
        """Delete the oldest finished tasks beyond ``keep_finished``; return how many."""
        self._check_open()
        if keep_finished < 0:
            raise ValueError(f"keep_finished must be >= 0, got {keep_finished}")
        finished = [task for task in self._tasks.values() if task.state.is_terminal]
        finished.sort(key=lambda task: task.updated_at)  # stable: ties keep insertion order
        doomed = finished[: max(len(finished) - keep_finished, 0)]
        for task in doomed:
            self._drop(task.task_id)
        return len(doomed)

    def _drop(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)
        self._json.pop(task_id, None)
        self._finished.forget(task_id)
        self._leases.pop(task_id, None)
        self._endpoints.pop(task_id, None)
        for key in self._deliveries.pop(task_id, {}):
            del self._delivery_task[key]

    def _leasable(self, task_id: str, owner: str, now: datetime) -> bool:
        task = self._tasks.get(task_id)
        if task is None or task.state.is_terminal:
            return False
        held = self._leases.get(task_id)
        return held is None or held.owner == owner or held.expires_at <= now

    async def create_task(self, task: StoredTask, owner: str, ttl: float) -> Lease | None:
        """Insert a new task leased to ``owner``; None if the id exists already."""
        self._check_open()
        check_lease_args(ttl)
        if task.task_id in self._tasks:
            return None
        await self.save_task(task)
        lease = Lease(task.task_id, owner, datetime.now(UTC) + timedelta(seconds=ttl))
        self._leases[task.task_id] = lease
        return lease

    async def acquire_lease(self, task_id: str, owner: str, ttl: float) -> Lease | None:
        """Lease an unfinished task to ``owner`` unless another owner's lease is live."""
        self._check_open()
        check_lease_args(ttl)
        now = datetime.now(UTC)
        if not self._leasable(task_id, owner, now):
            return None
        lease = Lease(task_id, owner, now + timedelta(seconds=ttl))
        self._leases[task_id] = lease
        return lease

    async def renew_leases(self, owner: str, ttl: float) -> set[str]:
        """Extend ``owner``'s leases on unfinished tasks; return the ids it still holds."""
        self._check_open()
        check_lease_args(ttl)
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        held = {
            task_id
            for task_id, lease in self._leases.items()
            if lease.owner == owner and not self._tasks[task_id].state.is_terminal
        }
        for task_id in held:
            self._leases[task_id] = Lease(task_id, owner, expires)
        return held

    async def release_leases(self, owner: str, task_ids: Sequence[str] | None = None) -> int:
        """Give up ``owner``'s leases (all, or those on ``task_ids``); return how many."""
        self._check_open()
        wanted = None if task_ids is None else set(task_ids)
        doomed = [
            task_id
            for task_id, lease in self._leases.items()
            if lease.owner == owner and (wanted is None or task_id in wanted)
        ]
        for task_id in doomed:
            del self._leases[task_id]
        return len(doomed)

    async def lease(self, task_id: str) -> Lease | None:
        """Return the task's lease, or None."""
        self._check_open()
        return self._leases.get(task_id)

    async def take_over_expired(self, owner: str, ttl: float, limit: int = 100) -> list[TakenOver]:
        """Claim unfinished tasks with an expired lease or none, oldest first."""
        self._check_open()
        check_lease_args(ttl, limit)
        now = datetime.now(UTC)
        claimed: list[TakenOver] = []
        for task in await self.unfinished_tasks():
            if len(claimed) == limit:
                break
            held = self._leases.get(task.task_id)
            if held is not None and (held.owner == owner or held.expires_at > now):
                continue
            lease = Lease(task.task_id, owner, now + timedelta(seconds=ttl))
            self._leases[task.task_id] = lease
            claimed.append(TakenOver(task, lease, None if held is None else held.owner))
        return claimed

    async def reserve_seq(self, task_id: str, count: int = 1) -> range | None:
        """Reserve the next ``count`` sequence numbers of a task; None if it is unknown."""
        self._check_open()
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        task = self._tasks.get(task_id)
        if task is None:
            return None
        self._tasks[task_id] = dataclasses.replace(task, pushed=task.pushed + count)
        return range(task.pushed + 1, task.pushed + count + 1)

    async def close(self) -> None:
        """Drop everything; later calls raise :class:`~mqttpush.errors.StoreError`."""
        self._closed = True
        self._leases.clear()
        self._replies.clear()
        self._tasks.clear()
        self._json.clear()
        self._finished.clear()
        self._endpoints.clear()
        self._deliveries.clear()
        self._delivery_task.clear()
