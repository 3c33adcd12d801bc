"""One notification to one endpoint, as the sender's delivery tracker follows it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mqttpush.models import DeliveryInfo, DeliveryState, utc_now
from mqttpush.store import Delivery

if TYPE_CHECKING:
    from datetime import datetime

    from mqttpush.transport.base import Message

__all__ = ["NOBODY", "TrackedDelivery", "info_of"]

#: The detail of a publish no subscriber matched.
NOBODY = "no matching subscribers: the endpoint is not connected and has no session"


class TrackedDelivery:
    """One notification to one endpoint: where it stands, as the store keeps it, and its message.

    The state is one immutable :class:`~mqttpush.store.Delivery` row, replaced on every
    change: the store saves that row as it is, and the wire status is made from it.
    """

    __slots__ = ("message", "queued_at", "row", "sent_at", "size")

    def __init__(self, row: Delivery, message: Message) -> None:
        self.row = row
        self.message: Message | None = message  # kept until a final state, to publish again
        self.size = len(message.payload)  # counted in the endpoint's byte window until then
        self.sent_at = 0.0
        self.queued_at = time.monotonic()

    @property
    def state(self) -> DeliveryState:
        """Where the delivery stands."""
        return self.row.state

    @property
    def endpoint(self) -> str:
        """The endpoint's address, as registered."""
        return self.row.endpoint

    @property
    def attempts(self) -> int:
        """How many publishes the broker acknowledged."""
        return self.row.attempts

    @property
    def detail(self) -> str | None:
        """Why it is in its state, when that needs saying."""
        return self.row.detail

    def published(self, detail: str | None) -> None:
        """Count a publish the broker acknowledged (now ``published``, unless it was final)."""
        self.sent_at = time.monotonic()
        row = self.row
        if row.state is DeliveryState.QUEUED or detail != row.detail:
            self.row = _changed(row, DeliveryState.PUBLISHED, row.attempts + 1, detail, utc_now())
        else:
            self.row = _changed(row, row.state, row.attempts + 1, row.detail, row.updated_at)

    def move(self, state: DeliveryState, detail: str | None = None) -> None:
        """Go to ``state``; a final state drops the message."""
        row = self.row
        self.row = _changed(row, state, row.attempts, detail, utc_now())
        if state.is_final:
            self.message = None

    def to_info(self) -> DeliveryInfo:
        """The wire's view of this delivery."""
        return info_of(self.row)


def _changed(
    row: Delivery, state: DeliveryState, attempts: int, detail: str | None, at: datetime
) -> Delivery:
    """``row`` with a new state, attempt count, detail and time.

    Built directly: ``dataclasses.replace`` is several times slower, and this runs at
    every publish and receipt.
    """
    return Delivery(row.notification_id, row.task_id, row.seq, row.endpoint, state, attempts,
                    detail, at)  # fmt: skip


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
