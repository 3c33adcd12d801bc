"""The shared reply cache of the PostgreSQL store: the ``mqttpush_replies`` table.

A claim is one ``INSERT ... ON CONFLICT`` statement: a new key is inserted, an expired
claim without a reply is taken over in the same statement (``DO UPDATE ... WHERE``), and
anything else is left alone (then read back). PostgreSQL serialises the conflicting
inserts on the key, so of several copies claiming at once exactly one gets it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from mqttpush.store.replies import ReplyClaim, ReplyStore, check_reply_args

if TYPE_CHECKING:
    from psycopg.rows import DictRow

__all__ = ["PostgresReplies"]

_CLAIM = """
INSERT INTO mqttpush_replies AS r (key, owner, claim_expires, reply, size)
VALUES (%(key)s, %(owner)s, now() + make_interval(secs => %(ttl)s), NULL, %(size)s)
ON CONFLICT (key) DO UPDATE SET
    owner = excluded.owner, claim_expires = excluded.claim_expires, size = excluded.size,
    pos = DEFAULT
WHERE r.reply IS NULL AND r.claim_expires <= now()
RETURNING owner
"""
_FOUND = "SELECT owner, reply FROM mqttpush_replies WHERE key = %(key)s"
_SAVE = """
UPDATE mqttpush_replies SET owner = %(owner)s, reply = %(reply)s, size = size + %(size)s
WHERE key = %(key)s AND reply IS NULL
"""
_DROP = "DELETE FROM mqttpush_replies WHERE key = %(key)s AND owner = %(owner)s AND reply IS NULL"
_PRUNE = """
DELETE FROM mqttpush_replies WHERE key IN (
    SELECT key FROM (
        SELECT key, row_number() OVER newest AS n, sum(size) OVER newest AS total
        FROM mqttpush_replies WINDOW newest AS (ORDER BY pos DESC)
    ) AS aged WHERE n > %(keep)s OR total > %(keep_bytes)s
)
"""


class PostgresReplies(ReplyStore):
    """The :class:`~mqttpush.store.replies.ReplyStore` methods of the PostgreSQL store."""

    @abstractmethod
    async def _fetch(self, query: str, params: dict[str, Any]) -> list[DictRow]: ...

    @abstractmethod
    async def _execute(self, query: str, params: dict[str, Any]) -> int: ...

    async def claim_reply(self, key: str, owner: str, ttl: float) -> ReplyClaim:
        """Claim ``key`` for ``owner`` unless a reply or another live claim is there."""
        check_reply_args(ttl)
        params = {"key": key, "owner": owner, "ttl": ttl, "size": len(key.encode())}
        for _ in range(3):  # the row may be pruned between the two statements: again
            if await self._fetch(_CLAIM, params):
                return ReplyClaim(claimed=True, owner=owner)
            found = await self._fetch(_FOUND, {"key": key})
            if found:
                reply = found[0]["reply"]
                return ReplyClaim(
                    claimed=False,
                    reply=None if reply is None else bytes(reply),
                    owner=found[0]["owner"],
                )
        return ReplyClaim(claimed=False)  # pruned under us each time: treat it as running

    async def save_reply(self, key: str, owner: str, reply: bytes) -> bool:
        """Keep the reply under ``key``; False if the claim is gone or a reply is kept."""
        params = {"key": key, "owner": owner, "reply": reply, "size": len(reply)}
        return await self._execute(_SAVE, params) == 1

    async def drop_reply(self, key: str, owner: str) -> None:
        """Give up ``owner``'s claim on ``key`` when no reply was kept."""
        await self._execute(_DROP, {"key": key, "owner": owner})

    async def prune_replies(self, keep: int, keep_bytes: int) -> int:
        """Delete the oldest replies beyond ``keep`` rows or ``keep_bytes``."""
        if keep < 0 or keep_bytes < 0:
            raise ValueError(f"keep and keep_bytes must be >= 0, got {keep}, {keep_bytes}")
        return await self._execute(_PRUNE, {"keep": keep, "keep_bytes": keep_bytes})
