"""Flow control per endpoint: a window of notifications awaiting receipts, and a rate.

:class:`Windows` lets at most ``size`` notifications per endpoint wait for a receipt.
When an endpoint's window is full, pushes wait; as receipts (or expiries) make room,
the waiting push of highest priority goes first, then the one that waited longest.
:class:`Pacer` spaces the notifications of one registration to at most ``rate`` per
second (the registration's ``rate``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["Pacer", "Windows"]


class Windows:
    """Slots per endpoint, handed out by priority once the endpoint's window is full.

    Args:
        size: Notifications per endpoint that may wait for a receipt at once.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._outstanding: dict[str, int] = {}
        # Per endpoint, a heap of waiting pushes: (-rank, arrival, future). Its length is
        # bounded by the pushes under way, since each push waits for one slot at a time.
        self._waiting: dict[str, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._arrivals = itertools.count()

    def outstanding(self, endpoint: str) -> int:
        """Notifications to ``endpoint`` holding a slot (awaiting their receipt)."""
        return self._outstanding.get(endpoint, 0)

    def waiting(self, endpoint: str) -> int:
        """Pushes waiting for a slot of ``endpoint``."""
        return sum(not f.done() for _, _, f in self._waiting.get(endpoint, ()))

    async def acquire(self, endpoint: str, rank: int) -> None:
        """Take a slot of ``endpoint``, waiting behind higher ranks if its window is full."""
        count = self._outstanding.get(endpoint, 0)
        if count < self._size and not self._waiting.get(endpoint):
            self._outstanding[endpoint] = count + 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._waiting.setdefault(endpoint, []), (-rank, next(self._arrivals), future)
        )
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(endpoint)  # granted just before the cancellation: give it back
            raise

    def release(self, endpoint: str) -> None:
        """Give a slot of ``endpoint`` back, to the best waiting push if there is one."""
        count = self._outstanding.get(endpoint, 1) - 1
        heap = self._waiting.get(endpoint)
        while heap and count < self._size:
            _, _, future = heapq.heappop(heap)
            if not future.done():  # a cancelled waiter is skipped
                future.set_result(None)
                count += 1
        if heap is not None and not heap:
            del self._waiting[endpoint]
        if count > 0:
            self._outstanding[endpoint] = count
        else:
            self._outstanding.pop(endpoint, None)


class Pacer:
    """Spaces the notifications of each (task, endpoint) to at most ``rate`` per second."""

    _PURGE_AT = 10_000  # entries; beyond, those no longer holding anything back are dropped

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], float] = {}

    def __len__(self) -> int:
        return len(self._next)

    async def wait(self, task_id: str, endpoint: str, rate: float) -> None:
        """Wait until the next notification of ``task_id`` to ``endpoint`` may go."""
        loop = asyncio.get_running_loop()
        key = (task_id, endpoint)
        now = loop.time()
        due = self._next.get(key, now)
        self._next[key] = max(now, due) + 1.0 / rate
        if len(self._next) > self._PURGE_AT:
            self._next = {k: t for k, t in self._next.items() if t > now}
        if due > now:
            await asyncio.sleep(due - now)
