"""Replies already sent, so that a repeated request is answered without running it again.

Two levels: :class:`ResponseCache`, in the process, answers repeats that reach the same
process; :class:`SharedReplies`, in the store a pool's copies share, answers repeats that
reach another copy (a caller's retry after a reconnect goes to whichever copy the broker
picks).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import math
from typing import TYPE_CHECKING

from mqttpush import codec
from mqttpush.errors import StoreError
from mqttpush.store.replies import ReplyClaim
from mqttpush.transport.base import Message

if TYPE_CHECKING:
    from mqttpush.store.replies import ReplyStore

__all__ = ["ResponseCache", "SharedReplies"]

log = logging.getLogger(__name__)

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

    def abandon(self, key: _Key, future: asyncio.Future[Message | None]) -> None:
        """Forget ``key`` without a reply (repeats waiting get none; a later one runs anew)."""
        if self._entries.get(key) is future:
            self._forget(key)
        elif not future.done():
            future.set_result(None)

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


_FIRST_POLL, _LAST_POLL = 0.05, 0.5  # seconds between two looks at another copy's claim
_PRUNE_EVERY = 100  # replies a copy saves between two prunes of the shared cache


class SharedReplies:
    """The repeated-request cache of a pool, in the store its copies share.

    The copy that takes a request first claims its key in the store; a repeat on any
    copy then gets the reply that copy saved, or waits while it runs. A repeat waits
    by reading the claim again (every 0.05 s, doubling to 0.5 s): repeats are rare (a
    caller's retry), and polling needs nothing from the store that a pooled connection,
    PgBouncer in transaction mode, SQLite or the memory store lacks (LISTEN/NOTIFY would).
    A claim that outlives ``claim_ttl`` without a reply is its copy's death: the repeat
    claims the key itself and runs the request. When the store fails, the request runs
    (only the in-process cache guards it then).

    Args:
        store: The store the pool's copies share.
        owner: This copy's id; its claims carry it.
        scope: Whose requests these are (the agent's address); two agents' keys never meet.
        claim_ttl: Seconds a claim holds without a reply.
        keep: Replies kept, at most (the oldest go first).
        keep_bytes: Bytes of replies and keys kept, at most.
        max_reply_bytes: A larger reply is not kept: a repeat on another copy runs again.
        reads: Operations that change nothing: a repeat of one runs again wherever it
            lands (as cheap as a claim, and its answer is fresher), so they are not
            claimed, sparing the store two writes per read.
    """

    def __init__(
        self,
        store: ReplyStore,
        owner: str,
        scope: str,
        *,
        claim_ttl: float,
        keep: int,
        keep_bytes: int,
        max_reply_bytes: int,
        reads: frozenset[str] = frozenset(),
    ) -> None:
        self._store = store
        self._reads = reads
        self._owner = owner
        self._scope = scope.encode()
        self._claim_ttl = claim_ttl
        self._keep = keep
        self._keep_bytes = keep_bytes
        self._max_reply_bytes = max_reply_bytes
        self._saved = 0

    def covers(self, method: str | None) -> bool:
        """Whether requests for ``method`` are claimed (all but the ``reads``)."""
        return method not in self._reads

    def _store_key(self, key: _Key) -> str:
        topic, correlation = key
        return hashlib.blake2b(
            b"\0".join((self._scope, topic.encode(), correlation)), digest_size=20
        ).hexdigest()

    async def claim(self, key: _Key) -> ReplyClaim:
        """Claim the request for this copy, or find its reply or the live claim of another."""
        try:
            return await self._store.claim_reply(self._store_key(key), self._owner, self._claim_ttl)
        except StoreError as exc:
            log.warning("shared reply cache unavailable, the request runs here: %s", exc)
            return ReplyClaim(claimed=True)

    async def wait(self, key: _Key) -> ReplyClaim:
        """Wait while another copy runs the request: its reply, or the claim once it expired.

        Bounded: after ``claim_ttl`` and one more look, the last answer is returned
        (pending, if another copy claimed the key again meanwhile).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._claim_ttl + _LAST_POLL
        pause = _FIRST_POLL
        while True:
            await asyncio.sleep(pause)
            found = await self.claim(key)
            if not found.pending or loop.time() >= deadline:
                return found
            pause = min(pause * 2, _LAST_POLL)

    async def save(self, key: _Key, reply: Message | None) -> None:
        """Keep the reply for repeats on other copies (or give the claim up if too large)."""
        store_key = self._store_key(key)
        try:
            stored = None if reply is None else _encode(reply)
            if stored is None or len(stored) > self._max_reply_bytes:
                await self._store.drop_reply(store_key, self._owner)
                return
            await self._store.save_reply(store_key, self._owner, stored)
            self._saved += 1
            if self._saved % _PRUNE_EVERY == 0:
                await self._store.prune_replies(self._keep, self._keep_bytes)
        except StoreError as exc:  # a repeat on another copy waits for the claim to expire
            log.warning("reply not kept in the shared reply cache: %s", exc)

    @staticmethod
    def replay(stored: bytes, request: Message) -> Message:
        """The reply another copy saved, addressed to the repeated ``request``."""
        head, _, payload = stored.partition(b"\n")
        fields = json.loads(head)
        left = codec.remaining_expiry(request)
        return Message(
            topic=request.response_topic or "",
            payload=payload,
            qos=1,
            content_type=fields["content_type"],
            correlation_data=request.correlation_data,
            message_expiry=None if left is None else max(1, math.ceil(left)),
            user_properties=tuple((name, value) for name, value in fields["user_properties"]),
        )


def _encode(reply: Message) -> bytes:
    """A reply as stored: its properties as one JSON line, then its payload."""
    head = {"content_type": reply.content_type, "user_properties": reply.user_properties}
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + reply.payload
