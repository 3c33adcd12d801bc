"""The shared reply cache of the SQLite store: one ``replies`` table, rowid order is age.

A claim is one ``BEGIN IMMEDIATE`` transaction (read, then insert or take over an expired
claim), so processes sharing the file on one machine each see one winner.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mqttpush.store import sqlite_sql as sql
from mqttpush.store.replies import ReplyClaim, ReplyStore, check_reply_args

if TYPE_CHECKING:
    import contextlib
    import sqlite3

__all__ = ["SqliteReplies"]

_PRUNE = """
DELETE FROM replies WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, row_number() OVER newest AS n, sum(size) OVER newest AS total
        FROM replies WINDOW newest AS (ORDER BY rowid DESC)
    ) WHERE n > ? OR total > ?
)
"""


class SqliteReplies(ReplyStore):
    """The :class:`~mqttpush.store.replies.ReplyStore` methods of the SQLite store."""

    @abstractmethod
    def _conn(self) -> sqlite3.Connection: ...

    @abstractmethod
    def _errors(self) -> contextlib.AbstractContextManager[None]: ...

    async def claim_reply(self, key: str, owner: str, ttl: float) -> ReplyClaim:
        """Claim ``key`` for ``owner`` unless a reply or another live claim is there."""
        check_reply_args(ttl)
        db = self._conn()
        now = datetime.now(UTC)
        with self._errors(), sql.transaction(db):
            row = db.execute(
                "SELECT owner, claim_expires, reply FROM replies WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and (
                row["reply"] is not None or sql.from_text(row["claim_expires"]) > now
            ):
                reply = None if row["reply"] is None else bytes(row["reply"])
                return ReplyClaim(claimed=False, reply=reply, owner=row["owner"])
            # New, or an expired claim (its copy died): the newest row, this owner's.
            db.execute("DELETE FROM replies WHERE key = ?", (key,))
            expires = sql.to_text(now + timedelta(seconds=ttl))
            db.execute(
                "INSERT INTO replies (key, owner, claim_expires, reply, size) "
                "VALUES (?, ?, ?, NULL, ?)",
                (key, owner, expires, len(key.encode())),
            )
        return ReplyClaim(claimed=True, owner=owner)

    async def save_reply(self, key: str, owner: str, reply: bytes) -> bool:
        """Keep the reply under ``key``; False if the claim is gone or a reply is kept."""
        db = self._conn()
        with self._errors():
            return (
                db.execute(
                    "UPDATE replies SET owner = ?, reply = ?, size = size + ? "
                    "WHERE key = ? AND reply IS NULL",
                    (owner, reply, len(reply), key),
                ).rowcount
                == 1
            )

    async def drop_reply(self, key: str, owner: str) -> None:
        """Give up ``owner``'s claim on ``key`` when no reply was kept."""
        db = self._conn()
        with self._errors():
            db.execute(
                "DELETE FROM replies WHERE key = ? AND owner = ? AND reply IS NULL", (key, owner)
            )

    async def prune_replies(self, keep: int, keep_bytes: int) -> int:
        """Delete the oldest replies beyond ``keep`` rows or ``keep_bytes``."""
        if keep < 0 or keep_bytes < 0:
            raise ValueError(f"keep and keep_bytes must be >= 0, got {keep}, {keep_bytes}")
        db = self._conn()
        with self._errors():
            return db.execute(_PRUNE, (keep, keep_bytes)).rowcount
