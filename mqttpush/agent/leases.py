"""Task leases of one copy of a pool: taken when a task starts, renewed, taken over.

Every copy of a pool owns the tasks it started through a lease in the shared store
(its owner id is its MQTT client id, unique per copy and run). It renews its leases
every third of ``agent.lease_ttl``; each time, it also claims the tasks whose lease
expired (their copy died), and hands each to ``on_taken``: run again (agents whose
tasks are resumable) or failed visibly. A dead copy's tasks are thus taken over within
``lease_ttl`` plus a third of it, plus one round's statements, by exactly one copy.

Rounds keep their pace whatever else the copy does: a round starts every third of the
lease time from the start of the one before, the tasks it claimed are handed over in a
task of their own (the next renewal never waits for them), and the PostgreSQL store runs
the round's two statements on a connection that no other write can hold
(:mod:`mqttpush.store.postgres.dedicated`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from mqttpush.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.store import StoredTask, TakenOver, TaskStore

__all__ = ["LeaseKeeper"]

log = logging.getLogger(__name__)


class LeaseKeeper:
    """The leases one copy holds in a shared store.

    Args:
        store: The store every copy shares.
        owner: This copy's owner id.
        ttl: Seconds a lease lasts unless renewed.
        on_taken: Called with each task claimed from a dead copy.
        on_renewed: Called after each renewal with the ids this copy still holds (those
            renewed, and those it created meanwhile): a task it runs that is not among
            them was taken over by another copy, and must stop here.
    """

    def __init__(
        self,
        store: TaskStore,
        owner: str,
        ttl: float,
        on_taken: Callable[[TakenOver], Awaitable[object]],
        on_renewed: Callable[[set[str]], object] = lambda _held: None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self._on_taken = on_taken
        self._on_renewed = on_renewed
        self._created: set[str] = set()  # since the renewal under way began
        self._creating: set[str] = set()  # inserts under way: not visible to a renewal yet
        self.taken_over = 0  #: tasks claimed from dead copies so far

    async def create(self, task: StoredTask) -> bool:
        """Insert a new task leased to this copy; False if its id exists already."""
        self._creating.add(task.task_id)
        try:
            created = await self.store.create_task(task, self.owner, self.ttl) is not None
        finally:
            self._creating.discard(task.task_id)
        if created:
            self._created.add(task.task_id)
        return created

    async def release(self, task_id: str) -> None:
        """Give up the lease of a task that ended."""
        await self.store.release_leases(self.owner, [task_id])

    async def owner_of(self, task_id: str) -> str | None:
        """The copy whose lease on the task is live, if another copy's."""
        lease = await self.store.lease(task_id)
        return None if lease is None or lease.owner == self.owner else lease.owner

    async def run(self) -> None:
        """Renew and take over every third of the lease time, until cancelled."""
        log.info("task leases of owner %s: %.1f s, renewed every %.1f s", self.owner, self.ttl,
                 self.ttl / 3)  # fmt: skip
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as handing:
            while True:
                started = loop.time()
                try:
                    taken = await self.renew_and_claim()
                except StoreError as exc:  # the store is away: the next round tries again
                    log.warning("leases of %s not renewed: %s", self.owner, exc)
                else:
                    if taken:
                        name = f"mqttpush-takeover-{self.owner}"
                        handing.create_task(self._hand_over(taken), name=name)
                await asyncio.sleep(max(0.0, started + self.ttl / 3 - loop.time()))

    async def tick(self) -> None:
        """One round: renew this copy's leases, claim expired ones, and hand those over."""
        await self._hand_over(await self.renew_and_claim())

    async def renew_and_claim(self) -> list[TakenOver]:
        """Renew this copy's leases (telling ``on_renewed``), then claim expired ones."""
        self._created = set()
        renewed = await self.store.renew_leases(self.owner, self.ttl)
        self._on_renewed(renewed | self._created | self._creating)
        taken = await self.store.take_over_expired(self.owner, self.ttl)
        for claimed in taken:
            self.taken_over += 1
            log.warning(
                "task %s taken over from %s (its lease expired)",
                claimed.task.task_id,
                claimed.previous_owner,
            )
        return taken

    async def _hand_over(self, taken: list[TakenOver]) -> None:
        for claimed in taken:
            task_id = claimed.task.task_id
            try:
                await self._on_taken(claimed)
            except StoreError as exc:
                # Not started here: give the lease back so that a copy claims it again.
                log.warning("task %s taken over but not started: %s", task_id, exc)
                with contextlib.suppress(StoreError):  # then its lease lapses instead
                    await self.store.release_leases(self.owner, [task_id])
