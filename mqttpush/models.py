"""Wire models: every JSON object mqttpush puts on or takes off the wire.

All share :class:`WireModel` (unknown fields refused, field names as on the wire).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from mqttpush.address import Address, check_level, is_mqtt_text

__all__ = [
    "MAX_TOKEN_BYTES",
    "DeliveryInfo",
    "DeliveryState",
    "ErrorInfo",
    "JsonRpcError",
    "JsonRpcRequest",
    "JsonRpcResponse",
    "NotificationFilter",
    "Priority",
    "PushFormat",
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


_M = TypeVar("_M", bound=BaseModel)


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

#: Bytes of UTF-8 a push token may have: it travels as an MQTT 5 user property value.
MAX_TOKEN_BYTES = 1024


class JsonRpcRequest(WireModel):
    """A JSON-RPC 2.0 request object; params are by name.

    ``id`` is strict: a string, an integer or null. ``true``, ``1.5``, ``2.0`` and
    ``1e2`` are refused (-32600) rather than read as another id or as none.
    """

    jsonrpc: Literal["2.0"]
    method: str = Field(min_length=1)
    params: dict[str, Any] | list[Any] | None = None
    id: Annotated[str, Field(strict=True)] | Annotated[int, Field(strict=True)] | None = None


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


class Priority(StrEnum):
    """How urgent a notification is: when an endpoint's window is full, higher goes first."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """0 (low) to 3 (urgent)."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}

#: A value a filter compares a ``data`` field with (equality only); strings bounded.
FilterValue = Annotated[str, Field(max_length=1024)] | int | float | bool | None
_FieldName = Annotated[str, Field(min_length=1, max_length=256)]


class NotificationFilter(WireModel):
    """Which of a task's notifications an endpoint gets, decided at the sender.

    Every given criterion must hold: the notification's ``state`` is one of ``states``,
    its priority is at least ``min_priority``, and its ``data`` has each field of
    ``data`` with an equal value. A criterion left out holds for every notification.
    """

    states: Annotated[list[TaskState], Field(min_length=1, max_length=5)] | None = None
    min_priority: Priority | None = None
    data: Annotated[dict[_FieldName, FilterValue], Field(min_length=1, max_length=16)] | None = None

    def matches(self, notification: PushNotification) -> bool:
        """Whether ``notification`` passes this filter."""
        if self.states is not None and notification.state not in self.states:
            return False
        if self.min_priority is not None and notification.priority.rank < self.min_priority.rank:
            return False
        if self.data is not None:
            data = notification.data
            if data is None:
                return False
            missing = object()
            for key, value in self.data.items():
                found = data.get(key, missing)
                # bool is an int in Python: True must not equal 1 here, as in JSON.
                if (
                    found is missing
                    or found != value
                    or isinstance(found, bool) != isinstance(value, bool)
                ):
                    return False
        return True


class PushFormat(StrEnum):
    """The payload an endpoint gets: mqttpush's own, or a CloudEvents 1.0 envelope."""

    MQTTPUSH = "mqttpush"
    CLOUDEVENTS = "cloudevents"


class TaskPushNotificationConfig(WireModel):
    """Where to push notifications of one task, and which ones, in which format, how fast.

    ``token`` travels with each notification; ``filter`` picks the notifications the
    endpoint gets; ``format`` chooses the payload; ``rate`` caps notifications per second.
    """

    task_id: TaskId
    address: str
    token: str | None = None
    filter: NotificationFilter | None = None
    format: PushFormat = PushFormat.MQTTPUSH
    rate: Annotated[float, Field(gt=0, le=1000)] | None = None

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        return str(Address.parse(value))

    @field_validator("token")
    @classmethod
    def _token_fits_a_user_property(cls, value: str | None) -> str | None:
        # A token the envelope could not carry would be left out of every notification,
        # and the endpoint would reject them all: refuse it here instead.
        if value is None:
            return None
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_TOKEN_BYTES:
            raise ValueError(f"token is {size} bytes, over the limit of {MAX_TOKEN_BYTES}")
        if not is_mqtt_text(value):
            raise ValueError("token contains control characters, surrogates or non-characters")
        return value


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
    priority: Priority = Priority.NORMAL
    data: dict[str, Any] | None = None
    # The typed ``data`` is kept in ``__pydantic_private__``, set on first use: a declared
    # private attribute would cost every notification a Python call on creation (~4 us,
    # a third of its validation), and most are never typed.

    def data_as(self, model: type[_M]) -> _M:
        """``data`` as an instance of ``model`` (validated once, then kept).

        Raises:
            pydantic.ValidationError: ``data`` does not match ``model``.
        """
        kept = self.typed
        if isinstance(kept, model):
            return kept
        typed = model.model_validate(self.data or {})
        object.__setattr__(self, "__pydantic_private__", {"typed": typed})  # frozen otherwise
        return typed

    @property
    def typed(self) -> Any:  # noqa: ANN401 - the receiving agent's notification_model
        """``data`` as the receiving agent's ``notification_model``, once it was validated."""
        private = self.__pydantic_private__
        return None if private is None else private.get("typed")
