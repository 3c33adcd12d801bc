"""When to publish a notification again: one deadline per publish, in a timer queue.

Every publish the broker acknowledged gets a deadline, ``receipt_timeout`` after its
PUBACK. The deadline is the same span after each publish and publishes are counted in
time order, so the queue is a FIFO in deadline order (a degenerate timer wheel: no heap
needed). The resend loop sleeps until the earliest deadline, and on an empty queue it
waits for the next publish with no timer at all: an idle sender does not wake.

An entry whose delivery got its receipt, or was published again since (a newer entry
then follows), is skipped when it falls due; once no delivery awaits a receipt the
queue is cleared at once, so its length is bounded by the publishes of the last
``receipt_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqttpush.agent.tracked import TrackedDelivery

__all__ = ["ResendQueue"]


class ResendQueue:
    """Deadlines of the published deliveries awaiting a receipt, earliest first.

    Args:
        timeout: Seconds from a publish to its deadline (``receipt_timeout``).
        slack: How late a deadline may be served, so that one wake-up serves every
            deadline of that span (a quarter of the timeout, by default).
    """

    def __init__(self, timeout: float, slack: float | None = None) -> None:
        self._timeout = timeout
        self._slack = timeout / 4 if slack is None else slack
        # (deadline, delivery, its attempts when scheduled): a later publish makes it stale
        self._entries: collections.deque[tuple[float, TrackedDelivery, int]] = collections.deque()
        self._changed = asyncio.Event()
        self.wakeups = 0  #: times the loop woke for a deadline (not for a new publish)

    def __len__(self) -> int:
        return len(self._entries)

    def schedule(self, delivery: TrackedDelivery) -> None:
        """Give ``delivery``'s publish, just acknowledged, its deadline."""
        if not self._entries:
            self._changed.set()  # the loop waits for a first deadline: it has one now
        self._entries.append((delivery.sent_at + self._timeout, delivery, delivery.attempts))

    def clear(self) -> None:
        """Drop every deadline (nothing awaits a receipt): the loop stops its timer."""
        if self._entries:
            self._entries.clear()
            self._changed.set()

    def due(self) -> list[TrackedDelivery]:
        """Take the deliveries whose deadline has passed and that still await a receipt."""
        now = time.monotonic()
        taken: list[TrackedDelivery] = []
        entries = self._entries
        while entries and entries[0][0] <= now:
            _, delivery, attempts = entries.popleft()
            if not delivery.state.is_final and delivery.attempts == attempts:
                taken.append(delivery)
        return taken

    async def wait(self) -> None:
        """Return once the earliest deadline (plus the slack) has passed.

        With no deadline queued this waits on an event, not a timer, until a publish
        schedules one.
        """
        while True:
            self._changed.clear()
            if not self._entries:
                await self._changed.wait()
                continue
            delay = self._entries[0][0] + self._slack - time.monotonic()
            if delay <= 0:
                self.wakeups += 1
                return
            try:
                async with asyncio.timeout(delay):
                    await self._changed.wait()  # cleared meanwhile: back to waiting untimed
            except TimeoutError:
                self.wakeups += 1
                return
