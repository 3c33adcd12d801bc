"""The rows of a task store: tasks, deliveries, leases, and endpoint options as columns.

Immutable snapshots (mqttpush.store.base says how a store keeps them); every store
builds and returns these, whatever its database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# DeliveryState: one spelling of delivery states, the wire's
from mqttpush.models import DeliveryState, TaskPushNotificationConfig

if TYPE_CHECKING:
    from datetime import datetime

    from mqttpush.models import ErrorInfo, TaskState

__all__ = [
    "Delivery",
    "DeliveryState",
    "Lease",
    "StoredTask",
    "TakenOver",
    "check_lease_args",
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
