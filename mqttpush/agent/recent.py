"""What an agent remembers of recent notifications: the ids handled, the push tokens expected."""

from __future__ import annotations

import collections
import hmac

__all__ = ["PushTokens", "RecentIds"]


class RecentIds:
    """The last ``size`` ids seen (and at most ``max_bytes`` of them), in bounded memory.

    An id older than the window is forgotten: a duplicate arriving after ``size``
    newer ids would be handled again (documented in docs/reliability.md). Ids come
    from the wire and may be long; the byte bound keeps long ones from costing more.
    A set answers the lookups and a queue keeps the order they are forgotten in (an
    id added again keeps its place): cheaper than an ordered dict, taken once per
    notification.
    """

    def __init__(self, size: int, max_bytes: int = 1 << 20) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._ids: set[str] = set()
        self._order: collections.deque[str] = collections.deque()

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, key: str) -> None:
        """Remember ``key``, forgetting the oldest beyond the window."""
        ids = self._ids
        if key in ids:
            return
        ids.add(key)
        self._order.append(key)
        self._bytes += len(key)
        while len(ids) > self._size or self._bytes > self._max_bytes:
            oldest = self._order.popleft()
            ids.discard(oldest)
            self._bytes -= len(oldest)

    @property
    def bytes(self) -> int:
        """Characters of the ids remembered (bytes, for the ASCII ids mqttpush makes)."""
        return self._bytes


class PushTokens:
    """The push token expected for each task this agent registered for, newest ``size`` kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._tokens: collections.OrderedDict[str, str] = collections.OrderedDict()

    def resized(self, size: int) -> PushTokens:
        """A copy that keeps the newest ``size`` tokens (those expected so far included)."""
        copy = PushTokens(size)
        for task_id, token in self._tokens.items():
            copy.expect(task_id, token)
        return copy

    def expect(self, task_id: str, token: str) -> None:
        """Expect ``token`` on every notification of ``task_id``."""
        self._tokens[task_id] = token
        self._tokens.move_to_end(task_id)
        while len(self._tokens) > self._size:
            self._tokens.popitem(last=False)

    def problem(self, task_id: str, token: str | None, *, required: bool) -> str | None:
        """Why a notification carrying ``token`` must be rejected, or None to accept it.

        Without a token expected for the task, it is accepted unless tokens are required.
        Tokens are compared in constant time.
        """
        expected = self._tokens.get(task_id)
        if expected is None:
            return "no push token was registered for this task" if required else None
        if token is None:
            return "the notification carries no push token"
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return "the notification carries a wrong push token"
        return None
