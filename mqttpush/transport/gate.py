"""Back-pressure for a client stack that reads its socket through an event-loop reader.

The aiomqtt transport reads through ``loop.add_reader``: :class:`ReadGate` removes that
reader while too many received messages (or bytes) wait to be handled, and puts it back
once they drained to half, so the kernel's socket buffer fills and TCP slows the broker
down, as the native client does with ``pause_reading``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

__all__ = ["ReadGate"]


class ReadGate:
    """Counts what was received and not yet taken; closes the socket reader past a bound.

    Args:
        loop: The event loop the reader runs on.
        max_messages: Messages waiting before reading stops.
        max_bytes: Payload bytes waiting before reading stops.
    """

    __slots__ = ("_fd", "_loop", "_reader", "bytes", "count", "max_bytes", "max_messages", "paused")

    def __init__(self, loop: asyncio.AbstractEventLoop, max_messages: int, max_bytes: int) -> None:
        self._loop = loop
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.count = 0
        self.bytes = 0
        self.paused = False
        self._fd: int | None = None
        self._reader: Callable[[], None] | None = None

    def attach(self, fd: int, reader: Callable[[], None]) -> None:
        """Read socket ``fd`` with ``reader`` (replacing the reader it had)."""
        self._fd, self._reader = fd, reader
        self.count = self.bytes = 0
        self.paused = False
        self._loop.add_reader(fd, reader)

    def detach(self) -> None:
        """The socket closed: forget it."""
        self._fd = self._reader = None
        self.paused = False

    def add(self, size: int) -> None:
        """A message of ``size`` payload bytes arrived; stop reading if over a bound."""
        self.count += 1
        self.bytes += size
        if (
            not self.paused
            and self._fd is not None
            and (self.count >= self.max_messages or self.bytes >= self.max_bytes)
        ):
            self.paused = True
            self._loop.remove_reader(self._fd)

    def take(self, size: int) -> None:
        """A message of ``size`` payload bytes was taken; read again once half drained."""
        self.count = max(self.count - 1, 0)
        self.bytes = max(self.bytes - size, 0)
        if (
            self.paused
            and self.count <= self.max_messages // 2
            and self.bytes <= self.max_bytes // 2
        ):
            self.paused = False
            if self._fd is not None and self._reader is not None:
                self._loop.add_reader(self._fd, self._reader)
