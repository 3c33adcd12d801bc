"""A pool copy's leases: renewal keeps what it runs, a task created meanwhile included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from mqttpush.agent.leases import LeaseKeeper
from mqttpush.models import TaskState
from mqttpush.store import MemoryTaskStore, StoredTask, TakenOver


def _task(task_id: str) -> StoredTask:
    now = datetime.now(UTC)
    return StoredTask(task_id, TaskState.SUBMITTED, None, None, None, now, now, 0)


class SlowInsert(MemoryTaskStore):
    """Inserts that finish only when told: a renewal can run while one is under way."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def create_task(self, task, owner, ttl):
        await self.go.wait()
        return await super().create_task(task, owner, ttl)


async def test_a_renewal_holds_the_tasks_created_before_and_during_it():
    store = SlowInsert()
    held: list[set[str]] = []
    taken: list[TakenOver] = []

    async def on_taken(t: TakenOver) -> None:
        taken.append(t)

    keeper = LeaseKeeper(store, "copy-a", 30.0, on_taken, held.append)
    store.go.set()
    assert await keeper.create(_task("old"))
    store.go.clear()
    inserting = asyncio.create_task(keeper.create(_task("new")))
    await asyncio.sleep(0.01)  # the insert is under way
    await keeper.tick()
    assert held[-1] >= {"old", "new"}  # "new" is not stopped as if another copy took it
    store.go.set()
    assert await inserting
    await keeper.tick()
    assert held[-1] == {"old", "new"}
    assert taken == []


async def test_an_expired_lease_of_a_dead_copy_is_taken_over_once():
    store = MemoryTaskStore()
    taken: list[TakenOver] = []

    async def on_taken(t: TakenOver) -> None:
        taken.append(t)

    dead = LeaseKeeper(store, "dead", 0.05, on_taken)
    assert await dead.create(_task("t"))
    alive = LeaseKeeper(store, "alive", 30.0, on_taken)
    await alive.tick()
    assert taken == []  # the lease is still live
    await asyncio.sleep(0.1)
    await alive.tick()
    await alive.tick()
    assert [(t.task.task_id, t.previous_owner) for t in taken] == [("t", "dead")]
    assert alive.taken_over == 1


class CountingRenewals(MemoryTaskStore):
    def __init__(self) -> None:
        super().__init__()
        self.renewals = 0

    async def renew_leases(self, owner, ttl):
        self.renewals += 1
        return await super().renew_leases(owner, ttl)


async def test_renewals_keep_their_pace_while_a_taken_over_task_is_handed_over():
    store = CountingRenewals()
    dead = LeaseKeeper(store, "dead", 0.01, _never_taken)
    assert await dead.create(_task("t"))
    await asyncio.sleep(0.05)  # its lease expired
    handing = asyncio.Event()
    release = asyncio.Event()

    async def slow_hand_over(t: TakenOver) -> None:
        handing.set()
        await release.wait()  # e.g. its endpoints loaded through a busy store

    alive = LeaseKeeper(store, "alive", 0.3, slow_hand_over)  # a round every 0.1 s
    async with asyncio.TaskGroup() as group:
        running = group.create_task(alive.run())
        async with asyncio.timeout(10):
            await handing.wait()
            before = store.renewals
            while store.renewals < before + 3:  # bounded by the timeout above
                await asyncio.sleep(0.05)
        release.set()
        running.cancel()
    assert alive.taken_over == 1


async def _never_taken(t: TakenOver) -> None:
    raise AssertionError(f"{t} taken over")
