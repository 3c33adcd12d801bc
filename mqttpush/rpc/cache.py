"""Replies already sent, so that a repeated request is answered without running it again."""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqttpush.transport.base import Message

__all__ = ["ResponseCache"]


class ResponseCache:
    """Replies by request key, so a repeated request is answered without running it again.

    The key is the request's Response Topic and Correlation Data (or JSON-RPC id).
    While the first copy runs, a repeat waits for its reply.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: collections.OrderedDict[tuple[str, bytes], asyncio.Future[Message | None]]
        self._entries = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: tuple[str, bytes]) -> asyncio.Future[Message | None] | None:
        """Return the reply (or the pending reply) of an earlier copy, if any."""
        return self._entries.get(key)

    def begin(self, key: tuple[str, bytes]) -> asyncio.Future[Message | None]:
        """Record that the request with ``key`` is running; returns the future to resolve."""
        future: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        self._entries[key] = future
        while len(self._entries) > self._size:
            _, oldest = self._entries.popitem(last=False)
            if not oldest.done():
                oldest.set_result(None)  # a waiting repeat gets no cached reply
        return future
