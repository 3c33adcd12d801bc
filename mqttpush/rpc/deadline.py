"""A deadline for the awaits of one task: ``asyncio.timeout`` at a third of its cost.

Every call waits under one, so it is on the hot path: a plain ``with`` (no coroutines to
enter and leave, no rescheduling), and a timer made without copying the context, which
its callback never reads. What it does on expiry is what ``asyncio.timeout`` does:
cancel the task, and turn that cancellation, and only that one, into ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Deadline"]

_NO_CONTEXT = contextvars.Context()  # the timer's callback reads no context variable


class Deadline:
    """Cancel the current task at ``when`` (loop time); the block then raises TimeoutError.

    A cancellation from elsewhere stays a cancellation, even one that comes together
    with the deadline (as with ``asyncio.timeout``).

    Raises:
        RuntimeError: Not inside a task.
    """

    __slots__ = ("_cancelling", "_handle", "_task", "expired")

    def __init__(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a Deadline is for the awaits of a task")
        self._task = task
        self._cancelling = task.cancelling()
        #: Whether the deadline passed (and the task was cancelled for it).
        self.expired = False
        self._handle = loop.call_at(when, self._expire, context=_NO_CONTEXT)

    def _expire(self) -> None:
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
        self._handle.cancel()
        if (
            self.expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
