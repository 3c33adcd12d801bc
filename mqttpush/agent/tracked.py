"""One notification to one endpoint, as the sender's delivery tracker follows it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mqttpush.models import DeliveryInfo, DeliveryState
from mqttpush.store import Delivery

if TYPE_CHECKING:
    from mqttpush.transport.base import Message

__all__ = ["NOBODY", "TrackedDelivery", "info_of"]

#: The detail of a publish no subscriber matched.
NOBODY = "no matching subscribers: the endpoint is not connected and has no session"


class TrackedDelivery:
    """One notification to one endpoint: where it stands, and its message until final.

    The fields change in place at every publish and receipt; the store's
    :class:`~mqttpush.store.Delivery` row and the wire's status are made from them when
    asked for (:attr:`row`, :meth:`to_info`), not at every change: a sender makes several
    changes per notification, and reads a row once (when its final state is saved).
    """

    __slots__ = (
        "attempts", "detail", "endpoint", "message", "notification_id", "queued_at",
        "sent_at", "seq", "size", "state", "task_id", "updated",
    )  # fmt: skip

    def __init__(
        self, notification_id: str, task_id: str, seq: int, endpoint: str, message: Message
    ) -> None:
        self.notification_id = notification_id
        self.task_id = task_id
        self.seq = seq
        self.endpoint = endpoint  #: the endpoint's address, as registered
        self.state = DeliveryState.QUEUED  #: where the delivery stands
        self.attempts = 0  #: how many publishes the broker acknowledged
        self.detail: str | None = None  #: why it is in its state, when that needs saying
        self.updated = time.time()  # when the state last changed (Unix time)
        self.message: Message | None = message  # kept until a final state, to publish again
        self.size = len(message.payload)  # counted in the endpoint's byte window until then
        self.sent_at = 0.0
        self.queued_at = time.monotonic()

    @classmethod
    def of_row(cls, row: Delivery, message: Message) -> TrackedDelivery:
        """Follow a delivery from a stored row (its state, attempts and detail)."""
        delivery = cls(row.notification_id, row.task_id, row.seq, row.endpoint, message)
        delivery.state = row.state
        delivery.attempts = row.attempts
        delivery.detail = row.detail
        delivery.updated = row.updated_at.timestamp()
        return delivery

    @property
    def row(self) -> Delivery:
        """The store's row for where it stands now."""
        return Delivery(
            self.notification_id, self.task_id, self.seq, self.endpoint, self.state,
            self.attempts, self.detail, datetime.fromtimestamp(self.updated, UTC),
        )  # fmt: skip

    def published(self, detail: str | None) -> None:
        """Count a publish the broker acknowledged (now ``published``, unless it was final)."""
        self.sent_at = time.monotonic()
        self.attempts += 1
        if self.state is DeliveryState.QUEUED or detail != self.detail:
            self.state = DeliveryState.PUBLISHED
            self.detail = detail
            self.updated = time.time()

    def move(self, state: DeliveryState, detail: str | None = None) -> None:
        """Go to ``state``; a final state drops the message."""
        self.state = state
        self.detail = detail
        self.updated = time.time()
        if state.is_final:
            self.message = None

    def to_info(self) -> DeliveryInfo:
        """The wire's view of this delivery."""
        return info_of(self.row)


def info_of(row: Delivery) -> DeliveryInfo:
    """The wire's view of a stored delivery row."""
    return DeliveryInfo(
        notification_id=row.notification_id,
        seq=row.seq,
        endpoint=row.endpoint,
        state=row.state,
        attempts=row.attempts,
        detail=row.detail,
        updated_at=row.updated_at,
    )
