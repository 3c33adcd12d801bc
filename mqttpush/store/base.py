"""The task store port: what a sender keeps so that a restart loses no task or delivery.

A :class:`TaskStore` holds three kinds of rows:

* tasks (:class:`StoredTask`), keyed by task id;
* push endpoints (:class:`~mqttpush.models.TaskPushNotificationConfig`), keyed by
  (task id, address) and kept in registration order;
* deliveries (:class:`Delivery`): one row per notification and endpoint, keyed by
  (notification id, endpoint), with that notification's state at that endpoint.

Rows are immutable snapshots: to change one, save a new snapshot with the same key.
JSON values (``params``, ``result``) come back in their JSON form (as
``pydantic_core.to_jsonable_python`` gives it), whatever the implementation.

Several processes may share one store (PostgreSQL; SQLite on one machine). Two things
keep them apart:

* **Leases** (:class:`Lease`): an unfinished task is owned by one process (its
  ``owner`` id, unique per process run) until its lease expires. The owner renews its
  leases (:meth:`TaskStore.renew_leases`); when it dies they expire, and another process
  claims the task with :meth:`TaskStore.take_over_expired`, which hands each expired task
  to exactly one caller however many race for it. Lease times are the store's clock
  (the database server's for PostgreSQL), never the callers'.
* **Sequence numbers**: :meth:`TaskStore.reserve_seq` adds to a task's ``pushed`` count
  atomically, so two processes never get the same ``seq``; ``pushed`` never goes down,
  not even when an older snapshot of the task is saved.

The in-memory store implements both for one process. A store also keeps the replies
a pool's copies share to answer repeated requests (:mod:`mqttpush.store.replies`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Self

# DeliveryState: one spelling of delivery states, the wire's
from mqttpush.models import DeliveryState, TaskPushNotificationConfig
from mqttpush.store.records import (
    Delivery,
    Lease,
    StoredTask,
    TakenOver,
    endpoint_from_columns,
    endpoint_options,
)
from mqttpush.store.replies import ReplyClaim, ReplyStore

if TYPE_CHECKING:
    from collections.abc import Sequence


__all__ = [
    "Delivery",
    "DeliveryState",
    "Lease",
    "ReplyClaim",
    "StoredTask",
    "TakenOver",
    "TaskStore",
    "endpoint_from_columns",
    "endpoint_options",
]


class TaskStore(ReplyStore, ABC):
    """Durable home of a sender's tasks, push endpoints and deliveries.

    Use it as an async context manager, or call :meth:`close` when done. Once closed,
    every method raises :class:`~mqttpush.errors.StoreError`. A store that fails raises
    :class:`~mqttpush.errors.StoreError` too (:class:`~mqttpush.errors.StoreUnavailableError`
    when its database cannot be reached), never its driver's own exceptions.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @abstractmethod
    async def save_task(self, task: StoredTask) -> None:
        """Insert ``task``, or replace the task with the same id (keeping its place in order).

        ``pushed`` never goes down: the stored count stays when ``task.pushed`` is lower
        (another process may have reserved numbers since this snapshot was taken). A
        replaced task keeps its lease.
        """

    @abstractmethod
    async def get_task(self, task_id: str) -> StoredTask | None:
        """Return the task with this id, or None."""

    @abstractmethod
    async def unfinished_tasks(self) -> list[StoredTask]:
        """Return the tasks whose state is not terminal, oldest (by ``created_at``) first."""

    @abstractmethod
    async def save_endpoint(self, config: TaskPushNotificationConfig) -> None:
        """Insert an endpoint, or replace the one with the same task id and address.

        A replaced endpoint keeps its place in registration order.
        """

    @abstractmethod
    async def endpoints(self, task_id: str) -> list[TaskPushNotificationConfig]:
        """Return the endpoints registered for a task, in registration order."""

    @abstractmethod
    async def forget_endpoints(self, task_id: str) -> None:
        """Delete every endpoint registered for a task."""

    @abstractmethod
    async def save_delivery(self, delivery: Delivery) -> None:
        """Insert a delivery, or replace the one with the same notification id and endpoint."""

    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Save several deliveries at once (stores override this to batch the writes)."""
        for delivery in deliveries:
            await self.save_delivery(delivery)

    @abstractmethod
    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Return a task's deliveries, ordered by ``seq``, then ``endpoint``."""

    @abstractmethod
    async def delivery_summary(self, task_id: str) -> dict[DeliveryState, int]:
        """Return how many of a task's deliveries are in each state (states with none left out)."""

    @abstractmethod
    async def prune(self, keep_finished: int) -> int:
        """Delete the oldest finished tasks beyond the newest ``keep_finished``.

        Finished tasks are those in a terminal state; the oldest are those finished first
        (earliest ``updated_at``). Their endpoints and deliveries go with them.
        Unfinished tasks are never deleted.

        Returns:
            How many tasks were deleted.

        Raises:
            ValueError: ``keep_finished`` is negative.
        """

    # --- ownership and sequence numbers, for several processes sharing the store --------

    @abstractmethod
    async def create_task(self, task: StoredTask, owner: str, ttl: float) -> Lease | None:
        """Insert a new task leased to ``owner`` for ``ttl`` seconds, in one step.

        Returns:
            The lease; None if a task with this id exists already (it is left unchanged).

        Raises:
            ValueError: ``ttl`` is not positive.
        """

    @abstractmethod
    async def acquire_lease(self, task_id: str, owner: str, ttl: float) -> Lease | None:
        """Lease an unfinished task to ``owner`` for ``ttl`` seconds from now.

        It succeeds when the task has no owner, its lease has expired, or ``owner``
        holds it already (then it is renewed).

        Returns:
            The lease; None if the task is unknown, finished, or leased to another owner.

        Raises:
            ValueError: ``ttl`` is not positive.
        """

    @abstractmethod
    async def renew_leases(self, owner: str, ttl: float) -> set[str]:
        """Extend every lease ``owner`` holds on an unfinished task to ``ttl`` seconds from now.

        A lease that expired is renewed too, unless another owner took the task over.

        Returns:
            The ids of the tasks ``owner`` still holds; it must stop working on any other.

        Raises:
            ValueError: ``ttl`` is not positive.
        """

    @abstractmethod
    async def release_leases(self, owner: str, task_ids: Sequence[str] | None = None) -> int:
        """Give up ``owner``'s leases (all, or those on ``task_ids``), e.g. on shutdown.

        Released tasks have no owner, so :meth:`take_over_expired` claims them at once.

        Returns:
            How many leases were released.
        """

    @abstractmethod
    async def lease(self, task_id: str) -> Lease | None:
        """Return the task's lease (live or expired), or None if it has none or is unknown."""

    @abstractmethod
    async def take_over_expired(self, owner: str, ttl: float, limit: int = 100) -> list[TakenOver]:
        """Claim unfinished tasks whose lease expired, or that have no owner, for ``owner``.

        Atomic: however many processes call this at once, each task goes to one of them.
        Tasks ``owner`` holds already are not returned. Oldest (``created_at``) first.

        Args:
            owner: The claiming process's id.
            ttl: Length of the new leases, in seconds.
            limit: Claim at most this many.

        Raises:
            ValueError: ``ttl`` is not positive or ``limit`` is below 1.
        """

    @abstractmethod
    async def reserve_seq(self, task_id: str, count: int = 1) -> range | None:
        """Reserve the next ``count`` sequence numbers of a task, atomically.

        Adds ``count`` to the task's ``pushed``; no two calls, from any process, get the
        same number.

        Returns:
            The numbers reserved, e.g. ``range(8, 11)``; None if the task is unknown.

        Raises:
            ValueError: ``count`` is below 1.
        """

    @abstractmethod
    async def close(self) -> None:
        """Release the store's resources; safe to call when already closed."""
