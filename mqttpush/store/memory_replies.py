"""The shared reply cache of the in-memory store: claims and replies, oldest first.

One process only, so a claim needs no lock: the first caller wins until its claim
expires or it gives it up.
"""

from __future__ import annotations

import collections
from abc import abstractmethod
from datetime import UTC, datetime, timedelta

from mqttpush.store.replies import ReplyClaim, ReplyStore, check_reply_args

__all__ = ["MemoryReplies", "Replies"]

#: key -> (owner, claim expires, reply), oldest first.
Replies = collections.OrderedDict[str, tuple[str, datetime, bytes | None]]


class MemoryReplies(ReplyStore):
    """The :class:`~mqttpush.store.replies.ReplyStore` methods of the in-memory store."""

    _replies: Replies

    @abstractmethod
    def _check_open(self) -> None: ...

    async def claim_reply(self, key: str, owner: str, ttl: float) -> ReplyClaim:
        """Claim ``key`` for ``owner`` unless a reply or another live claim is there."""
        self._check_open()
        check_reply_args(ttl)
        now = datetime.now(UTC)
        found = self._replies.get(key)
        if found is not None and (found[2] is not None or found[1] > now):
            return ReplyClaim(claimed=False, reply=found[2], owner=found[0])
        self._replies.pop(key, None)  # an expired claim: its place is now the newest
        self._replies[key] = (owner, now + timedelta(seconds=ttl), None)
        return ReplyClaim(claimed=True, owner=owner)

    async def save_reply(self, key: str, owner: str, reply: bytes) -> bool:
        """Keep the reply under ``key``; False if the claim is gone or a reply is kept."""
        self._check_open()
        found = self._replies.get(key)
        if found is None or found[2] is not None:
            return False
        self._replies[key] = (owner, found[1], bytes(reply))
        return True

    async def drop_reply(self, key: str, owner: str) -> None:
        """Give up ``owner``'s claim on ``key`` when no reply was kept."""
        self._check_open()
        found = self._replies.get(key)
        if found is not None and found[0] == owner and found[2] is None:
            del self._replies[key]

    async def prune_replies(self, keep: int, keep_bytes: int) -> int:
        """Delete the oldest replies beyond ``keep`` rows or ``keep_bytes``."""
        self._check_open()
        if keep < 0 or keep_bytes < 0:
            raise ValueError(f"keep and keep_bytes must be >= 0, got {keep}, {keep_bytes}")
        total = 0
        doomed = []
        for kept, (key, (_owner, _expires, reply)) in enumerate(reversed(self._replies.items()), 1):
            total += len(key.encode()) + len(reply or b"")
            if kept > keep or total > keep_bytes:
                doomed.append(key)
        for key in doomed:
            del self._replies[key]
        return len(doomed)
