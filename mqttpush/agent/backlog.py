"""The first publications of notifications under way: bounded, and counted per task.

Without a bound, a sender whose endpoints' windows all have room (1,000 endpoints x 100)
encodes and queues every notification at once: 100,000 publishes wait for the broker,
and the event loop spends seconds on them before it serves a request. Past ``limit``,
a push waits (first come, first served) until a publication under way got its PUBACK
(or failed), so the work of pushing comes in small steps between which requests,
replies and receipts are handled.

The count per task lets a task's final notification wait until every earlier one was
published: the broker then has them all before the final one, and delivers them in
that order [MQTT-4.6.0-5].
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Backlog"]


class Backlog:
    """Slots for first publications, handed out in order; and, per task, those under way.

    A push takes the slots of all its endpoints at once, so pushes never hold some slots
    while waiting for others (which would deadlock once every slot was held so).

    Args:
        limit: First publications under way at once, across every task and endpoint (a
            push to more endpoints than that still goes, alone).
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._per_task: dict[str, int] = {}
        self._drained: dict[str, asyncio.Event] = {}

    def under_way(self, task_id: str) -> int:
        """First publications of ``task_id`` not finished yet."""
        return self._per_task.get(task_id, 0)

    def _fits(self, count: int) -> bool:
        return self._used == 0 or self._used + count <= self._limit

    def try_enter(self, task_id: str, count: int = 1) -> bool:
        """Take ``count`` slots at once if they are free and nobody waits; say whether taken."""
        if self._waiters or not self._fits(count):
            return False
        self._used += count
        self._per_task[task_id] = self._per_task.get(task_id, 0) + count
        return True

    async def enter(self, task_id: str, count: int = 1) -> None:
        """Take ``count`` slots for first publications of ``task_id``, behind earlier pushes."""
        if not self._waiters and self._fits(count):
            self._used += count
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append((count, waiter))
            try:
                await waiter  # the slots are taken for it when it is woken
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._used -= count
                self._wake()
                raise
        self._per_task[task_id] = self._per_task.get(task_id, 0) + count

    def leave(self, task_id: str, count: int = 1) -> None:
        """``count`` first publications of ``task_id`` ended (published, failed, given up)."""
        self._used -= count
        self._wake()
        left = self._per_task.get(task_id, 0) - count
        if left > 0:
            self._per_task[task_id] = left
            return
        self._per_task.pop(task_id, None)
        drained = self._drained.pop(task_id, None)
        if drained is not None:
            drained.set()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            count, waiter = waiters[0]
            if waiter.done():  # cancelled
                waiters.popleft()
                continue
            if not self._fits(count):
                return
            waiters.popleft()
            self._used += count
            waiter.set_result(None)

    async def published(self, task_id: str, timeout: float) -> bool:
        """Wait until no first publication of ``task_id`` is under way; False on timeout."""
        if not self._per_task.get(task_id):
            return True
        drained = self._drained.setdefault(task_id, asyncio.Event())
        try:
            async with asyncio.timeout(timeout):
                await drained.wait()
        except TimeoutError:
            return False
        return True
