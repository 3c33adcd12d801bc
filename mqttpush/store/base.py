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

The in-memory store implements both for one process.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

# DeliveryState: one spelling of delivery states, the wire's
from mqttpush.models import DeliveryState, TaskPushNotificationConfig

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from mqttpush.models import ErrorInfo, TaskState

__all__ = [
    "Delivery",
    "DeliveryState",
    "Lease",
    "StoredTask",
    "TakenOver",
    "TaskStore",
    "endpoint_from_columns",
    "endpoint_options",
]

_OPTIONS = {"filter", "format", "rate"}


def endpoint_options(config: TaskPushNotificationConfig) -> str | None:
    """A registration's options (filter, format, rate) as JSON text; None for the defaults."""
    options = config.model_dump(
        mode="json", include=_OPTIONS, exclude_none=True, exclude_defaults=True
    )
    return json.dumps(options, separators=(",", ":")) if options else None


def endpoint_from_columns(
    task_id: str, address: str, token: str | None, options: str | None
) -> TaskPushNotificationConfig:
    """The registration a store row holds, its options given as :func:`endpoint_options` wrote."""
    extra = json.loads(options) if options else {}
    return TaskPushNotificationConfig.model_validate(
        {"task_id": task_id, "address": address, "token": token, **extra}
    )


def _require_aware(owner: str, name: str, value: datetime) -> None:
    # Naive datetimes would be read as local time by one store and not by another.
    if value.utcoffset() is None:
        raise ValueError(f"{owner}.{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A snapshot of one task, as the store keeps it.

    Attributes:
        task_id: The task's id.
        state: The task's lifecycle state.
        params: The params given to ``run_task``, if any.
        result: The task's JSON result; None unless completed.
        error: Why the task failed, if it did.
        created_at: When the task was created (timezone-aware, UTC).
        updated_at: When the task last changed (timezone-aware, UTC).
        pushed: Sequence numbers used or reserved so far: a notification sent after a
            restart takes the next one, so it never repeats a ``seq``.

    Raises:
        ValueError: A datetime without a timezone.
    """

    task_id: str
    state: TaskState
    params: dict[str, Any] | None
    result: Any
    error: ErrorInfo | None
    created_at: datetime
    updated_at: datetime
    pushed: int

    def __post_init__(self) -> None:
        _require_aware("StoredTask", "created_at", self.created_at)
        _require_aware("StoredTask", "updated_at", self.updated_at)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where one notification stands at one endpoint.

    Attributes:
        notification_id: The notification's ``id``.
        task_id: The task the notification is about.
        seq: The notification's ``seq`` (from 1 per task).
        endpoint: The endpoint's address, e.g. ``"receiver@fame.fabric"``.
        state: The delivery state.
        attempts: Publish attempts made so far.
        detail: Why it is in this state, e.g. ``"no matching subscribers"`` or a failure.
        updated_at: When the state last changed (timezone-aware, UTC).

    Raises:
        ValueError: A datetime without a timezone.
    """

    notification_id: str
    task_id: str
    seq: int
    endpoint: str
    state: DeliveryState
    attempts: int
    detail: str | None
    updated_at: datetime

    def __post_init__(self) -> None:
        _require_aware("Delivery", "updated_at", self.updated_at)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who owns an unfinished task, and until when.

    Attributes:
        task_id: The task's id.
        owner: The owning process's id (unique per process run).
        expires_at: When the lease ends unless renewed (timezone-aware, UTC, the
            store's clock).
    """

    task_id: str
    owner: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TakenOver:
    """An unfinished task claimed from an owner whose lease expired.

    Attributes:
        task: The task as stored when it was claimed.
        lease: The new owner's lease.
        previous_owner: Whose lease expired; None if the task had no owner.
    """

    task: StoredTask
    lease: Lease
    previous_owner: str | None


def check_lease_args(ttl: float, limit: int = 1) -> None:
    """Refuse a lease length or a batch size that makes no sense (every store calls this).

    Raises:
        ValueError: ``ttl`` is not positive or ``limit`` is below 1.
    """
    if not ttl > 0:
        raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")


class TaskStore(ABC):
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
