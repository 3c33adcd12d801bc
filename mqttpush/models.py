"""Wire models: every JSON object mqttpush puts on or takes off the wire.

All share :class:`WireModel` (unknown fields refused, field names as on the wire).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from mqttpush.address import Address, check_level

__all__ = [
    "DeliveryInfo",
    "DeliveryState",
    "ErrorInfo",
    "JsonRpcError",
    "JsonRpcRequest",
    "JsonRpcResponse",
    "PushNotification",
    "Receipt",
    "TaskId",
    "TaskPushNotificationConfig",
    "TaskState",
    "TaskStatus",
    "WireModel",
    "new_id",
    "utc_now",
]


def new_id() -> str:
    """Return a fresh random id (32 hex digits, 128 random bits), safe as a topic level."""
    return os.urandom(16).hex()  # as random as uuid4, at a fifth of its cost


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every wire type: strict about unknown fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


JsonRpcId = str | int | None


class JsonRpcRequest(WireModel):
    """A JSON-RPC 2.0 request object; params are by name."""

    jsonrpc: Literal["2.0"]
    method: str = Field(min_length=1)
    params: dict[str, Any] | list[Any] | None = None
    id: JsonRpcId = None


class JsonRpcError(WireModel):
    """A JSON-RPC 2.0 error object."""

    code: int
    message: str
    data: Any = None


class JsonRpcResponse(WireModel):
    """A JSON-RPC 2.0 response object: ``result`` or ``error``, never both."""

    jsonrpc: Literal["2.0"]
    id: JsonRpcId
    result: Any = None
    error: JsonRpcError | None = None


class TaskState(StrEnum):
    """Task lifecycle states (A2A spelling)."""

    SUBMITTED = "submitted"
    WORKING = "working"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """Whether no change can follow this state."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED})


class ErrorInfo(WireModel):
    """Why a task failed."""

    type: str
    message: str


class DeliveryState(StrEnum):
    """What happened to one notification for one endpoint."""

    QUEUED = "queued"  # not yet accepted by the broker
    PUBLISHED = "published"  # the broker acknowledged it (PUBACK); no receipt yet
    DELIVERED = "delivered"  # the endpoint handled it and sent a receipt
    FAILED = "failed"  # could not be published (broker unreachable past the retries)
    EXPIRED = "expired"  # published, but no receipt after every attempt

    @property
    def is_final(self) -> bool:
        """Whether no change is expected after this state (a late receipt still counts)."""
        return self in _FINAL_DELIVERY


_FINAL_DELIVERY = frozenset({DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.EXPIRED})


class TaskStatus(WireModel):
    """A task snapshot, as ``run_task``, ``get_task_status`` and ``cancel_task`` return it.

    ``deliveries`` counts the task's notifications per endpoint by delivery state.
    """

    task_id: str
    state: TaskState
    result: Any = None
    error: ErrorInfo | None = None
    created_at: datetime
    updated_at: datetime
    deliveries: dict[DeliveryState, int] = Field(default_factory=dict)


class DeliveryInfo(WireModel):
    """The delivery of one notification to one endpoint, as ``get_delivery_status`` returns it."""

    notification_id: str
    seq: int
    endpoint: str
    state: DeliveryState
    attempts: int
    detail: str | None = None
    updated_at: datetime


class Receipt(WireModel):
    """A receipt an endpoint publishes to ``{sender}/ack`` after handling a notification."""

    id: str
    task_id: str
    seq: int = Field(ge=1)
    endpoint: str
    handled: bool = True


def _check_task_id(value: str) -> str:
    return check_level(value, "task id")


#: A task id: any string that can stand as one topic level (it ends push topics).
TaskId = Annotated[str, AfterValidator(_check_task_id)]


class TaskPushNotificationConfig(WireModel):
    """Where to push notifications of one task: an agent address and an optional token."""

    task_id: TaskId
    address: str
    token: str | None = None

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        return str(Address.parse(value))


class PushNotification(WireModel):
    """One notification about a task, as published to ``{base}/push/{task_id}``.

    ``seq`` counts from 1 per task. The task's last notification carries a terminal
    ``state`` (completed, failed or canceled); the others carry ``working``.
    """

    id: str = Field(default_factory=new_id)
    task_id: TaskId
    seq: int = Field(ge=1)
    state: TaskState = TaskState.WORKING
    message: str
    timestamp: datetime = Field(default_factory=utc_now)
    data: dict[str, Any] | None = None
