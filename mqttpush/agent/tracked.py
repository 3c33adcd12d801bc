"""One notification to one endpoint, as the sender's delivery tracker follows it."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from mqttpush.models import DeliveryInfo, DeliveryState, utc_now

if TYPE_CHECKING:
    from mqttpush.store import Delivery
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
        row = dataclasses.replace(self.row, attempts=self.row.attempts + 1)
        if row.state is DeliveryState.QUEUED or detail != row.detail:
            row = dataclasses.replace(
                row, state=DeliveryState.PUBLISHED, detail=detail, updated_at=utc_now()
            )
        self.row = row

    def move(self, state: DeliveryState, detail: str | None = None) -> None:
        """Go to ``state``; a final state drops the message."""
        self.row = dataclasses.replace(self.row, state=state, detail=detail, updated_at=utc_now())
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
