"""Deadlines for the awaits of many tasks: ``asyncio.timeout`` at a fraction of its cost.

Every call waits under one, so they are on the hot path. :class:`Deadlines` keeps the
deadlines of one caller in a heap of plain tuples and holds one loop timer, for the
earliest; a :class:`Deadline` is a plain ``with`` (no coroutines to enter and leave). A
deadline that ends in time is only marked; the heap drops such entries as they come to
its top, and all at once when they are more than half of it (as the event loop does
with cancelled timers). What a deadline does when it passes is what ``asyncio.timeout``
does: cancel the task, and turn that cancellation, and only that one, into
``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Deadline", "Deadlines"]

_NO_CONTEXT = contextvars.Context()  # the timer's callback reads no context variable
_COMPACT_FROM = 64  # ended deadlines kept in the heap at most before half of it is dropped


class Deadline:
    """Cancel a task when its time is up; the ``with`` block then raises TimeoutError.

    A cancellation from elsewhere stays a cancellation, even one that comes together
    with the deadline (as with ``asyncio.timeout``). Made by :meth:`Deadlines.start`.
    """

    __slots__ = ("_cancelling", "_owner", "_task", "ended", "expired")

    def __init__(self, owner: Deadlines, task: asyncio.Task[object]) -> None:
        self._owner = owner
        self._task = task
        self._cancelling = task.cancelling()
        #: Whether the deadline passed (and the task was cancelled for it).
        self.expired = False
        #: Whether the block was left (the deadline no longer counts).
        self.ended = False

    def expire(self) -> None:
        """The time is up: cancel the task (unless the block was left already)."""
        if not self.ended and not self.expired:
            self.expired = True
            self._task.cancel()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ended = True
        if not self.expired:  # an expired one has left the heap already
            self._owner.ended += 1
        if (
            self.expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc


class Deadlines:
    """The deadlines of the tasks of one loop, on one timer.

    Args:
        loop: The event loop the tasks run on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        #: The loop whose tasks these deadlines are for.
        self.loop = loop
        self._loop = loop
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # ties are broken by age, never by comparing them
        self._timer: asyncio.TimerHandle | None = None
        #: Deadlines whose block was left, some of them still in the heap.
        self.ended = 0

    def __len__(self) -> int:
        """Deadlines in the heap, ended ones included until they are dropped."""
        return len(self._heap)

    def start(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now for the current task.

        Raises:
            RuntimeError: Not inside a task of this loop.
        """
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("a Deadline is for the awaits of a task")
        deadline = Deadline(self, task)
        when = self._loop.time() + seconds
        heap = self._heap
        if self.ended > _COMPACT_FROM and self.ended * 2 > len(heap):
            self._compact()
        heapq.heappush(heap, (when, next(self._order), deadline))
        timer = self._timer
        if timer is None or when < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(when, self._fire, context=_NO_CONTEXT)
        return deadline

    def _compact(self) -> None:
        """Drop every ended deadline from the heap."""
        live = [entry for entry in self._heap if not entry[2].ended]
        heapq.heapify(live)
        self._heap = live
        self.ended = 0

    def _fire(self) -> None:
        """Expire every deadline that is due, drop the ended ones on top, and wait again."""
        self._timer = None
        heap = self._heap
        now = self._loop.time()
        while heap and (heap[0][0] <= now or heap[0][2].ended):
            deadline = heapq.heappop(heap)[2]
            if deadline.ended:
                self.ended -= 1
            else:
                deadline.expire()
        if heap:
            self._timer = self._loop.call_at(heap[0][0], self._fire, context=_NO_CONTEXT)
