"""The shared reply cache port: a pool's copies answer a repeated request once between them.

A request is known by a key (its Response Topic, Correlation Data and payload, hashed).
The copy that takes a request first *claims* its key, atomically; it runs the request and
saves the reply under the key. A repeat reaching any copy then finds the reply (and sends
it again) or, while the first copy still runs it, a live claim of another copy (and
waits). A claim expires after its ``ttl`` (store clock) when no reply came: its copy is
taken for dead, and the next claimer runs the request itself.

Rows are bounded by :meth:`ReplyStore.prune_replies`, oldest first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = ["ReplyClaim", "ReplyStore", "check_reply_args"]


@dataclass(frozen=True, slots=True)
class ReplyClaim:
    """What :meth:`ReplyStore.claim_reply` found under a key.

    Attributes:
        claimed: The caller holds the claim now: it runs the request and saves the reply.
        reply: The reply saved by the copy that ran the request (when not claimed).
        owner: The copy holding the claim, or that saved the reply.
    """

    claimed: bool
    reply: bytes | None = None
    owner: str | None = None

    @property
    def pending(self) -> bool:
        """Another claim is live and its reply not saved yet: the request runs elsewhere."""
        return not self.claimed and self.reply is None


def check_reply_args(ttl: float) -> None:
    """Refuse a claim length that is not positive.

    Raises:
        ValueError: ``ttl`` is not positive.
    """
    if ttl <= 0:
        raise ValueError(f"ttl must be > 0, got {ttl}")


class ReplyStore(ABC):
    """Replies of requests by key, claimed by one copy at a time (part of every task store)."""

    @abstractmethod
    async def claim_reply(self, key: str, owner: str, ttl: float) -> ReplyClaim:
        """Claim ``key`` for ``owner`` for ``ttl`` seconds, unless someone has it.

        Atomic: of several copies claiming one key at once, one gets it. The claim is
        granted when the key is unknown, or its claim expired without a reply (its copy
        died). Otherwise the reply, or the live claim of the copy running the request,
        is returned (a live claim of ``owner`` itself too: its run is under way).

        Raises:
            ValueError: ``ttl`` is not positive.
        """

    @abstractmethod
    async def save_reply(self, key: str, owner: str, reply: bytes) -> bool:
        """Keep the reply of the request ``owner`` claimed under ``key``.

        Returns:
            False when there is nothing to save it to: the claim was pruned, or another
            copy's reply is kept already (the first saved stays).
        """

    @abstractmethod
    async def drop_reply(self, key: str, owner: str) -> None:
        """Give up ``owner``'s claim on ``key`` without a reply; a repeat runs again."""

    @abstractmethod
    async def prune_replies(self, keep: int, keep_bytes: int) -> int:
        """Delete the oldest claims and replies beyond the newest ``keep`` or ``keep_bytes``.

        A row's bytes are its key's and its reply's.

        Returns:
            How many rows were deleted.

        Raises:
            ValueError: ``keep`` or ``keep_bytes`` is negative.
        """
