"""Replies already sent, so that a repeated request is answered without running it again."""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqttpush.transport.base import Message

__all__ = ["ResponseCache"]

_Key = tuple[str, bytes]


class ResponseCache:
    """Replies by request key, so a repeated request is answered without running it again.

    The key is the request's Response Topic and Correlation Data (or JSON-RPC id).
    While the first copy runs, a repeat waits for its reply. Bounded twice: at most
    ``size`` entries, and at most ``max_bytes`` of keys and reply payloads, the oldest
    forgotten first (a large reply costs its bytes, not one slot in a thousand).
    """

    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        self._size = size
        self._max_bytes = max_bytes if max_bytes is not None else 1 << 62
        self._entries: collections.OrderedDict[_Key, asyncio.Future[Message | None]]
        self._entries = collections.OrderedDict()
        self._sizes: dict[_Key, int] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes held: the keys, and the payloads of the replies kept."""
        return self._bytes

    def lookup(self, key: _Key) -> asyncio.Future[Message | None] | None:
        """Return the reply (or the pending reply) of an earlier copy, if any."""
        return self._entries.get(key)

    def begin(self, key: _Key) -> asyncio.Future[Message | None]:
        """Record that the request with ``key`` is running; returns the future to resolve."""
        future: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        if key in self._entries:
            self._forget(key)
        self._entries[key] = future
        size = self._sizes[key] = len(key[0]) + len(key[1])
        self._bytes += size
        if len(self._entries) > self._size or self._bytes > self._max_bytes:
            self._evict()
        return future

    def finish(
        self, key: _Key, future: asyncio.Future[Message | None], reply: Message | None
    ) -> None:
        """Resolve ``future`` with ``reply`` (repeats now and later get it); count its bytes."""
        if future.done():
            return
        future.set_result(reply)
        if reply is not None and self._entries.get(key) is future:
            self._sizes[key] += len(reply.payload)
            self._bytes += len(reply.payload)
            if self._bytes > self._max_bytes:
                self._evict()

    def _evict(self) -> None:
        """Forget the oldest entries until both bounds hold."""
        entries, sizes = self._entries, self._sizes
        while entries and (len(entries) > self._size or self._bytes > self._max_bytes):
            key, future = entries.popitem(last=False)
            self._bytes -= sizes.pop(key)
            if not future.done():
                future.set_result(None)  # a waiting repeat gets no cached reply

    def _forget(self, key: _Key) -> None:
        future = self._entries.pop(key)
        self._bytes -= self._sizes.pop(key)
        if not future.done():
            future.set_result(None)  # a waiting repeat gets no cached reply
