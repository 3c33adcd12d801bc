"""Finished tasks an in-memory store keeps, in finishing order, counted in bytes."""

from __future__ import annotations

__all__ = ["FinishedLedger"]


class FinishedLedger:
    """Sizes of the finished tasks kept, oldest first, and which ones are over the bounds.

    Args:
        max_count: Finished tasks kept at most (no bound when None).
        max_bytes: Their bytes at most (no bound when None). The newest always stays.
    """

    def __init__(self, max_count: int | None = None, max_bytes: int | None = None) -> None:
        self._sizes: dict[str, int] = {}  # dicts keep insertion order: oldest first
        self._max_count = max_count
        self._max_bytes = max_bytes
        self.bytes = 0  #: bytes of the tasks kept

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._sizes

    def set(self, task_id: str, size: int) -> None:
        """Count ``task_id`` as the newest finished task, of ``size`` bytes."""
        self.forget(task_id)
        self._sizes[task_id] = size
        self.bytes += size

    def grow(self, task_id: str, size: int) -> None:
        """Add ``size`` bytes to a task kept (in its place), or count it as the newest."""
        self._sizes[task_id] = self._sizes.get(task_id, 0) + size
        self.bytes += size

    def forget(self, task_id: str) -> None:
        """Stop counting a task."""
        self.bytes -= self._sizes.pop(task_id, 0)

    def clear(self) -> None:
        """Count nothing."""
        self._sizes.clear()
        self.bytes = 0

    def alone_over(self) -> str | None:
        """The one task kept when it alone is over the byte bound, or None."""
        if len(self._sizes) == 1 and self._max_bytes is not None and self.bytes > self._max_bytes:
            return next(iter(self._sizes))
        return None

    def over(self) -> str | None:
        """The oldest task to drop to keep within the bounds, or None."""
        if len(self._sizes) <= 1:
            return None
        if (self._max_count is not None and len(self._sizes) > self._max_count) or (
            self._max_bytes is not None and self.bytes > self._max_bytes
        ):
            return next(iter(self._sizes))
        return None
