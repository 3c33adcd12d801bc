"""Flow control per endpoint: a window of notifications awaiting receipts, and a rate.

:class:`Windows` lets at most ``size`` notifications per endpoint, and ``max_bytes`` of
their payloads, wait for a receipt (one notification larger than ``max_bytes`` still
goes, alone). When an endpoint's window is full, pushes wait; as receipts (or expiries) make room,
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
        max_bytes: Payload bytes per endpoint that may wait for a receipt at once.
    """

    def __init__(self, size: int, max_bytes: int = 16 << 20) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._outstanding: dict[str, int] = {}
        self._held_bytes: dict[str, int] = {}
        # Per endpoint, a heap of waiting pushes: (-rank, arrival, bytes, future). Its
        # length is bounded by the pushes under way, since each waits for one slot at a time.
        self._waiting: dict[str, list[tuple[int, int, int, asyncio.Future[None]]]] = {}
        self._arrivals = itertools.count()

    def outstanding(self, endpoint: str) -> int:
        """Notifications to ``endpoint`` holding a slot (awaiting their receipt)."""
        return self._outstanding.get(endpoint, 0)

    def used(self) -> dict[str, int]:
        """Notifications holding a slot, per endpoint (endpoints with none left out)."""
        return dict(self._outstanding)

    def outstanding_bytes(self, endpoint: str) -> int:
        """Payload bytes of the notifications to ``endpoint`` holding a slot."""
        return self._held_bytes.get(endpoint, 0)

    def waiting(self, endpoint: str) -> int:
        """Pushes waiting for a slot of ``endpoint``."""
        return sum(not f.done() for *_, f in self._waiting.get(endpoint, ()))

    def _fits(self, endpoint: str, nbytes: int) -> bool:
        held = self._held_bytes.get(endpoint, 0)
        return self._outstanding.get(endpoint, 0) < self._size and (
            held == 0 or held + nbytes <= self._max_bytes
        )

    def _take(self, endpoint: str, nbytes: int) -> None:
        self._outstanding[endpoint] = self._outstanding.get(endpoint, 0) + 1
        self._held_bytes[endpoint] = self._held_bytes.get(endpoint, 0) + nbytes

    def try_acquire(self, endpoint: str, nbytes: int = 0) -> bool:
        """Take a slot of ``endpoint`` if one is free and nobody waits; say whether taken."""
        if not self._waiting.get(endpoint) and self._fits(endpoint, nbytes):
            self._take(endpoint, nbytes)
            return True
        return False

    async def acquire(self, endpoint: str, rank: int, nbytes: int = 0) -> None:
        """Take a slot of ``endpoint`` for ``nbytes`` of payload, behind higher ranks if full."""
        if self.try_acquire(endpoint, nbytes):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._waiting.setdefault(endpoint, []),
            (-rank, next(self._arrivals), nbytes, future),
        )
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(endpoint, nbytes)  # granted just before the cancellation
            raise

    def release(self, endpoint: str, nbytes: int = 0) -> None:
        """Give a slot of ``endpoint`` back, to the best waiting pushes that now fit."""
        count = self._outstanding.get(endpoint, 1) - 1
        held = self._held_bytes.get(endpoint, nbytes) - nbytes
        if count > 0:
            self._outstanding[endpoint] = count
            self._held_bytes[endpoint] = held
        else:
            self._outstanding.pop(endpoint, None)
            self._held_bytes.pop(endpoint, None)
        heap = self._waiting.get(endpoint)
        while heap:
            *_, size, future = heap[0]
            if future.done():  # a cancelled waiter is skipped
                heapq.heappop(heap)
                continue
            if not self._fits(endpoint, size):
                break  # the best waiter goes first, so smaller ones never overtake it
            heapq.heappop(heap)
            self._take(endpoint, size)
            future.set_result(None)
        if heap is not None and not heap:
            del self._waiting[endpoint]


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
