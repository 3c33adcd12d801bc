"""Giving memory back to the system once an agent's work is done.

After a large task, CPython has freed its objects, but the pages stay with the process:
small objects live in arenas that return to the system only when entirely empty, and
glibc keeps freed heap memory for later ``malloc`` calls. Memory is reused by the next
task either way; :func:`give_back` makes an idle process's resident size shrink too:
a full collection (objects kept alive only by cycles), then glibc's ``malloc_trim(0)``,
which returns the free pages of its heaps to the system (``madvise``). Elsewhere than
glibc it only collects.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["GiveBackWhenIdle", "give_back"]

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_TRIM = _malloc_trim()


def give_back() -> int:
    """Collect cycles and return glibc's free heap pages; return the objects collected."""
    collected = gc.collect()
    if _TRIM is not None:
        _TRIM(0)
    log.debug("memory given back: %d objects collected", collected)
    return collected


class GiveBackWhenIdle:
    """Calls :func:`give_back` once an agent has no task running and no records to fold.

    Armed when a task ends; it checks ``delay`` seconds later (records of an ended task
    fold one receipt timeout after they all settle) and checks again while records are
    left, at most ``tries`` times. A busy agent is left alone: its next task end re-arms.

    Args:
        delay: Seconds between the end of a task and a check.
        running: How many tasks are running.
        records: How many delivery records are kept (0 once every ended task folded).
        tries: Checks after one task end, at most.
    """

    def __init__(
        self,
        delay: float,
        running: Callable[[], int],
        records: Callable[[], int],
        *,
        tries: int = 100,
    ) -> None:
        self._delay = delay
        self._running = running
        self._records = records
        self._tries = tries
        self._left = 0
        self._handle: asyncio.TimerHandle | None = None
        self.given = 0  #: times memory was given back

    def arm(self) -> None:
        """A task ended: check (again) a moment from now."""
        self._left = self._tries
        self._schedule()

    def _schedule(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = asyncio.get_running_loop().call_later(self._delay, self._check)

    def _check(self) -> None:
        self._handle = None
        if self._running():
            return
        if self._records():
            self._left -= 1
            if self._left > 0:
                self._schedule()
            return
        give_back()
        self.given += 1
