"""Task stores: one contract suite for every implementation, then what only SQLite promises."""

import asyncio
import sqlite3
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mqttpush.errors import StoreError
from mqttpush.models import ErrorInfo, TaskPushNotificationConfig, TaskState
from mqttpush.store import (
    Delivery,
    DeliveryState,
    MemoryTaskStore,
    SqliteTaskStore,
    StoredTask,
)
from mqttpush.store.postgres import PostgresTaskStore
from mqttpush.store.sqlite import SCHEMA_VERSION
from mqttpush.store.sqlite_sql import MIGRATIONS

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def task(task_id, state=TaskState.WORKING, *, created=0.0, updated=None, **fields):
    values = {
        "params": {"n": 3},
        "result": None,
        "error": None,
        "pushed": 0,
        **fields,
    }
    return StoredTask(
        task_id=task_id,
        state=state,
        created_at=at(created),
        updated_at=at(created if updated is None else updated),
        **values,
    )


def delivery(notification_id, endpoint="r@fame.fabric", *, task_id="t", seq=1, **fields):
    values = {
        "state": DeliveryState.QUEUED,
        "attempts": 0,
        "detail": None,
        "updated_at": at(seq),
        **fields,
    }
    return Delivery(
        notification_id=notification_id, task_id=task_id, seq=seq, endpoint=endpoint, **values
    )


def endpoint(task_id, address, token=None):
    return TaskPushNotificationConfig(task_id=task_id, address=address, token=token)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request, tmp_path):
    """Make a new, empty store of each kind; open it with ``async with``.

    Opened and closed inside the test's own event loop (a connection pool is bound to it).
    """
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return lambda: PostgresTaskStore(url, migrate=True)
    if request.param == "sqlite":
        return lambda: SqliteTaskStore(tmp_path / "s.db")
    return MemoryTaskStore


# --- the contract ---------------------------------------------------------------------


async def test_save_get_and_replace_a_task(make_store):
    async with make_store() as store:
        assert await store.get_task("t") is None
        first = task("t", TaskState.SUBMITTED)
        await store.save_task(first)
        assert await store.get_task("t") == first
        done = task(
            "t",
            TaskState.COMPLETED,
            updated=5,
            result={"answer": [1, 2.5, "x", None, True]},
            pushed=4,
        )
        await store.save_task(done)
        assert await store.get_task("t") == done


async def test_a_failed_task_keeps_its_error_and_times_in_utc(make_store):
    async with make_store() as store:
        offset = timezone(timedelta(hours=2))
        failed = StoredTask(
            task_id="f",
            state=TaskState.FAILED,
            params=None,
            result=None,
            error=ErrorInfo(type="RuntimeError", message="boom"),
            created_at=T0.astimezone(offset),
            updated_at=at(1),
            pushed=2,
        )
        await store.save_task(failed)
        got = await store.get_task("f")
        assert got == failed
        assert got.error == ErrorInfo(type="RuntimeError", message="boom")
        assert got.created_at == T0
        assert got.params is None


async def test_saved_values_are_copies_in_json_form(make_store):
    async with make_store() as store:
        params: dict[str, object] = {"items": (1, 2)}
        await store.save_task(task("t", params=params, result=None))
        params["items"] = "changed"
        got = await store.get_task("t")
        assert got.params == {"items": [1, 2]}


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        StoredTask(
            task_id="t",
            state=TaskState.WORKING,
            params=None,
            result=None,
            error=None,
            created_at=datetime(2025, 1, 1),
            updated_at=T0,
            pushed=0,
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        delivery("n", updated_at=datetime(2025, 1, 1))


async def test_unfinished_tasks_oldest_first(make_store):
    async with make_store() as store:
        await store.save_task(task("late", created=30))
        await store.save_task(task("done", TaskState.COMPLETED, created=0))
        await store.save_task(task("early", TaskState.SUBMITTED, created=10))
        await store.save_task(task("tie-a", created=20))
        await store.save_task(task("tie-b", created=20))
        await store.save_task(task("gone", TaskState.CANCELED, created=5))
        await store.save_task(task("broke", TaskState.FAILED, created=6))
        ids = [t.task_id for t in await store.unfinished_tasks()]
        assert ids == ["early", "tie-a", "tie-b", "late"]
        # Replacing a task keeps its place among equals; finishing it takes it out.
        await store.save_task(task("tie-a", TaskState.WORKING, created=20, updated=40, pushed=1))
        await store.save_task(task("early", TaskState.COMPLETED, created=10, updated=41))
        ids = [t.task_id for t in await store.unfinished_tasks()]
        assert ids == ["tie-a", "tie-b", "late"]


async def test_endpoints_in_registration_order_replaced_in_place(make_store):
    async with make_store() as store:
        assert await store.endpoints("t") == []
        await store.save_endpoint(endpoint("t", "b@fame.fabric", "tok-1"))
        await store.save_endpoint(endpoint("t", "a@fame.fabric"))
        await store.save_endpoint(endpoint("other", "a@fame.fabric"))
        await store.save_endpoint(endpoint("t", "c@fame.fabric"))
        await store.save_endpoint(endpoint("t", "b@fame.fabric", "tok-2"))  # replaced, same place
        assert await store.endpoints("t") == [
            endpoint("t", "b@fame.fabric", "tok-2"),
            endpoint("t", "a@fame.fabric"),
            endpoint("t", "c@fame.fabric"),
        ]
        await store.forget_endpoints("t")
        await store.forget_endpoints("never-registered")
        assert await store.endpoints("t") == []
        assert await store.endpoints("other") == [endpoint("other", "a@fame.fabric")]


async def test_endpoint_options_are_kept_and_replaced(make_store):
    with_options = TaskPushNotificationConfig.model_validate(
        {
            "task_id": "t",
            "address": "a@fame.fabric",
            "filter": {"states": ["completed"], "data": {"parity": "even"}},
            "format": "cloudevents",
            "rate": 2.5,
        }
    )
    async with make_store() as store:
        await store.save_endpoint(with_options)
        await store.save_endpoint(endpoint("t", "b@fame.fabric"))
        assert await store.endpoints("t") == [with_options, endpoint("t", "b@fame.fabric")]
        await store.save_endpoint(endpoint("t", "a@fame.fabric", "tok"))  # options dropped
        assert await store.endpoints("t") == [
            endpoint("t", "a@fame.fabric", "tok"),
            endpoint("t", "b@fame.fabric"),
        ]


async def test_deliveries_ordered_by_seq_then_endpoint_and_replaced(make_store):
    async with make_store() as store:
        await store.save_delivery(delivery("n2", "b@fame.fabric", seq=2))
        await store.save_delivery(delivery("n1", "b@fame.fabric", seq=1))
        await store.save_delivery(delivery("n2", "a@fame.fabric", seq=2))
        await store.save_delivery(delivery("n1", "a@fame.fabric", seq=1))
        await store.save_delivery(delivery("x1", task_id="other"))
        published = delivery(
            "n1",
            "b@fame.fabric",
            seq=1,
            state=DeliveryState.PUBLISHED,
            attempts=1,
            detail="no matching subscribers",
        )
        await store.save_delivery(published)
        got = await store.deliveries("t")
        assert [(d.seq, d.endpoint) for d in got] == [
            (1, "a@fame.fabric"),
            (1, "b@fame.fabric"),
            (2, "a@fame.fabric"),
            (2, "b@fame.fabric"),
        ]
        assert got[1] == published
        assert await store.deliveries("nothing") == []


async def test_delivery_summary_counts_per_state(make_store):
    async with make_store() as store:
        assert await store.delivery_summary("t") == {}
        await store.save_delivery(delivery("n1", "a@f", state=DeliveryState.DELIVERED))
        await store.save_delivery(delivery("n1", "b@f", state=DeliveryState.FAILED, detail="gone"))
        await store.save_delivery(delivery("n2", "a@f", seq=2, state=DeliveryState.DELIVERED))
        await store.save_delivery(delivery("n2", "b@f", seq=2))
        await store.save_delivery(delivery("n9", "a@f", task_id="other"))
        assert await store.delivery_summary("t") == {
            DeliveryState.QUEUED: 1,
            DeliveryState.DELIVERED: 2,
            DeliveryState.FAILED: 1,
        }
        await store.save_delivery(delivery("n2", "b@f", seq=2, state=DeliveryState.EXPIRED))
        assert await store.delivery_summary("t") == {
            DeliveryState.DELIVERED: 2,
            DeliveryState.FAILED: 1,
            DeliveryState.EXPIRED: 1,
        }


async def test_prune_deletes_the_oldest_finished_tasks_and_their_rows(make_store):
    async with make_store() as store:
        # Finished (by updated_at): f1 first, then f2 and f3 tied (saved in that order), f4 last.
        await store.save_task(task("f4", TaskState.CANCELED, created=0, updated=40))
        await store.save_task(task("f2", TaskState.COMPLETED, created=1, updated=20))
        await store.save_task(task("f3", TaskState.FAILED, created=2, updated=20))
        await store.save_task(task("f1", TaskState.COMPLETED, created=3, updated=10))
        await store.save_task(task("w", TaskState.WORKING, created=-100, updated=-100))
        await store.save_task(task("s", TaskState.SUBMITTED, created=-50))
        for task_id in ("f1", "f2", "f3", "f4", "w"):
            await store.save_endpoint(endpoint(task_id, "r@fame.fabric"))
            await store.save_delivery(delivery(f"n-{task_id}", task_id=task_id))

        assert await store.prune(keep_finished=4) == 0
        assert await store.prune(keep_finished=2) == 2
        for gone in ("f1", "f2"):
            assert await store.get_task(gone) is None
            assert await store.endpoints(gone) == []
            assert await store.deliveries(gone) == []
            assert await store.delivery_summary(gone) == {}
        for kept in ("f3", "f4", "w", "s"):
            assert await store.get_task(kept) is not None
        assert len(await store.endpoints("f3")) == 1
        assert len(await store.deliveries("f3")) == 1

        assert await store.prune(keep_finished=0) == 2
        assert [t.task_id for t in await store.unfinished_tasks()] == ["w", "s"]
        assert len(await store.endpoints("w")) == 1
        assert len(await store.deliveries("w")) == 1
        assert await store.prune(keep_finished=0) == 0
        with pytest.raises(ValueError, match="keep_finished"):
            await store.prune(-1)


async def test_a_closed_store_refuses_use(make_store):
    async with make_store() as store:
        await store.save_task(task("t"))
        await store.close()
        await store.close()  # twice is fine
        with pytest.raises(StoreError, match="closed"):
            await store.get_task("t")
        with pytest.raises(StoreError, match="closed"):
            await store.save_delivery(delivery("n"))


async def test_async_with_closes():
    async with MemoryTaskStore() as store:
        await store.save_task(task("t"))
    with pytest.raises(StoreError):
        await store.unfinished_tasks()


def test_delivery_state_finality():
    assert {s for s in DeliveryState if s.is_final} == {
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.EXPIRED,
    }
    assert DeliveryState("published") is DeliveryState.PUBLISHED


# --- leases and sequence numbers (the contract, as one process sees it) ----------------

LONG = 60.0  # a lease that stays live for the whole test
SHORT = 0.05  # a lease that expires at once: wait EXPIRED seconds after taking it
EXPIRED = 0.2


def near(moment: datetime, seconds: float) -> bool:
    # Lease times are the store's clock (the database server's): allow for the round trip.
    return abs((moment - datetime.now(UTC)).total_seconds() - seconds) < 5


async def test_create_task_inserts_it_with_a_lease_once(make_store):
    async with make_store() as store:
        lease = await store.create_task(task("t", TaskState.SUBMITTED), "copy-a", LONG)
        assert lease is not None
        assert (lease.task_id, lease.owner) == ("t", "copy-a")
        assert near(lease.expires_at, LONG)
        assert await store.lease("t") == lease
        assert await store.get_task("t") == task("t", TaskState.SUBMITTED)
        # The same id again, from anyone: nothing changes.
        assert await store.create_task(task("t", TaskState.WORKING), "copy-b", LONG) is None
        assert (await store.get_task("t")).state is TaskState.SUBMITTED
        assert await store.lease("t") == lease
        # A replaced snapshot keeps its lease.
        await store.save_task(task("t", TaskState.WORKING, updated=3))
        assert await store.lease("t") == lease


async def test_acquire_lease_only_when_free_expired_or_already_ours(make_store):
    async with make_store() as store:
        assert await store.acquire_lease("unknown", "a", LONG) is None
        await store.save_task(task("t"))  # saved without an owner
        assert await store.lease("t") is None
        first = await store.acquire_lease("t", "a", SHORT)
        assert first is not None
        assert first.owner == "a"
        again = await store.acquire_lease("t", "a", LONG)  # ours: renewed
        assert again is not None
        assert again.expires_at > first.expires_at
        assert await store.acquire_lease("t", "b", LONG) is None  # a's lease is live
        assert (await store.lease("t")).owner == "a"

        await store.save_task(task("short"))
        assert await store.acquire_lease("short", "a", SHORT) is not None
        await asyncio.sleep(EXPIRED)
        taken = await store.acquire_lease("short", "b", LONG)  # a's lease expired
        assert taken is not None
        assert taken.owner == "b"

        await store.save_task(task("done", TaskState.COMPLETED))
        assert await store.acquire_lease("done", "a", LONG) is None  # finished: no owner


async def test_renew_keeps_what_an_owner_still_holds(make_store):
    async with make_store() as store:
        for task_id in ("kept", "lost", "finished"):
            await store.create_task(task(task_id), "a", SHORT)
        await store.create_task(task("theirs"), "b", LONG)
        await asyncio.sleep(EXPIRED)
        assert await store.acquire_lease("lost", "b", LONG) is not None  # taken over
        await store.save_task(task("finished", TaskState.COMPLETED, updated=1))
        assert await store.renew_leases("a", LONG) == {"kept"}  # expired, not taken: renewed
        assert near((await store.lease("kept")).expires_at, LONG)
        assert await store.renew_leases("b", LONG) == {"lost", "theirs"}
        assert await store.renew_leases("nobody", LONG) == set()


async def test_released_leases_are_taken_over_at_once(make_store):
    async with make_store() as store:
        for task_id in ("t1", "t2", "t3"):
            await store.create_task(task(task_id), "a", LONG)
        assert await store.release_leases("a", ["t1", "unknown"]) == 1
        assert await store.lease("t1") is None
        assert await store.release_leases("b") == 0  # not b's
        claimed = await store.take_over_expired("b", LONG)
        assert [(c.task.task_id, c.previous_owner) for c in claimed] == [("t1", None)]
        assert await store.release_leases("a") == 2
        assert await store.renew_leases("a", LONG) == set()


async def test_take_over_claims_each_expired_or_ownerless_task_once(make_store):
    async with make_store() as store:
        await store.save_task(task("orphan", created=1))  # no owner at all
        await store.create_task(task("dead-1", created=2, pushed=7), "dead", SHORT)
        await store.create_task(task("live", created=3), "alive", LONG)
        await store.create_task(task("mine", created=4), "me", SHORT)
        await store.create_task(task("dead-2", created=5), "dead", SHORT)
        await store.create_task(task("finished", created=0), "dead", SHORT)
        await store.save_task(task("finished", TaskState.FAILED, created=0, updated=1))
        await asyncio.sleep(EXPIRED)

        first = await store.take_over_expired("me", LONG, limit=2)
        assert [(c.task.task_id, c.previous_owner) for c in first] == [
            ("orphan", None),
            ("dead-1", "dead"),
        ]
        assert first[1].task == task("dead-1", created=2, pushed=7)
        assert all(c.lease.owner == "me" and near(c.lease.expires_at, LONG) for c in first)
        assert await store.lease("dead-1") == first[1].lease

        rest = await store.take_over_expired("me", LONG)
        assert [c.task.task_id for c in rest] == ["dead-2"]  # not its own, live, or finished
        assert await store.take_over_expired("me", LONG) == []
        # Its own expired lease is anyone else's to take.
        [mine] = await store.take_over_expired("someone", LONG)
        assert (mine.task.task_id, mine.previous_owner) == ("mine", "me")
        assert await store.renew_leases("dead", LONG) == set()  # the dead owner lost them all
        assert await store.renew_leases("me", LONG) == {"orphan", "dead-1", "dead-2"}


async def test_lease_arguments_are_checked(make_store):
    async with make_store() as store:
        await store.save_task(task("t"))
        with pytest.raises(ValueError, match="ttl"):
            await store.acquire_lease("t", "a", 0)
        with pytest.raises(ValueError, match="ttl"):
            await store.create_task(task("u"), "a", -1)
        with pytest.raises(ValueError, match="limit"):
            await store.take_over_expired("a", LONG, limit=0)
        with pytest.raises(ValueError, match="count"):
            await store.reserve_seq("t", 0)


async def test_reserve_seq_hands_out_each_number_once_and_pushed_never_goes_down(make_store):
    async with make_store() as store:
        assert await store.reserve_seq("unknown") is None
        await store.save_task(task("t", pushed=3))
        assert await store.reserve_seq("t") == range(4, 5)
        assert await store.reserve_seq("t", 5) == range(5, 10)
        assert (await store.get_task("t")).pushed == 9
        await store.save_task(task("t", TaskState.COMPLETED, updated=1, pushed=3))  # stale
        got = await store.get_task("t")
        assert (got.state, got.pushed) == (TaskState.COMPLETED, 9)
        await store.save_task(task("t", TaskState.COMPLETED, updated=2, pushed=20))
        assert (await store.get_task("t")).pushed == 20
        numbers = await asyncio.gather(*(store.reserve_seq("t", 2) for _ in range(20)))
        assert sorted(n for block in numbers for n in block) == list(range(21, 61))


# --- SQLite only ------------------------------------------------------------------------


async def test_sqlite_survives_close_and_reopen(tmp_path):
    path = tmp_path / "deep" / "er" / "store.db"  # parent folders are made
    async with SqliteTaskStore(str(path)) as first:
        await first.save_task(task("t", pushed=2))
        await first.save_endpoint(endpoint("t", "r@fame.fabric", "tok"))
        await first.save_delivery(delivery("n1", "r@fame.fabric", state=DeliveryState.DELIVERED))
    async with SqliteTaskStore(path) as second:
        assert await second.get_task("t") == task("t", pushed=2)
        assert await second.endpoints("t") == [endpoint("t", "r@fame.fabric", "tok")]
        assert await second.delivery_summary("t") == {DeliveryState.DELIVERED: 1}
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    assert path.stat().st_mode & 0o077 == 0  # tokens inside: owner only


@pytest.mark.timeout_s(30)
async def test_sqlite_survives_a_killed_process(tmp_path):
    path = tmp_path / "store.db"
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from datetime import UTC, datetime
        from mqttpush.models import TaskState
        from mqttpush.store import Delivery, DeliveryState, SqliteTaskStore, StoredTask

        now = datetime.now(UTC)
        store = SqliteTaskStore({str(path)!r})

        async def main():
            await store.save_task(StoredTask(
                task_id="t", state=TaskState.WORKING, params={{"n": 1}}, result=None,
                error=None, created_at=now, updated_at=now, pushed=1))
            await store.save_delivery(Delivery(
                notification_id="n1", task_id="t", seq=1, endpoint="r@fame.fabric",
                state=DeliveryState.PUBLISHED, attempts=1, detail=None, updated_at=now))

        asyncio.run(main())
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit, no flush
        """
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await proc.wait() == -9
    async with SqliteTaskStore(path) as store:
        [unfinished] = await store.unfinished_tasks()
        assert unfinished.task_id == "t"
        assert unfinished.params == {"n": 1}
        assert unfinished.pushed == 1
        [row] = await store.deliveries("t")
        assert (row.notification_id, row.state) == ("n1", DeliveryState.PUBLISHED)


async def test_sqlite_upgrades_a_version_1_file_keeping_its_tasks(tmp_path):
    path = tmp_path / "store.db"
    raw = sqlite3.connect(path)
    with raw:
        raw.executescript(MIGRATIONS[0])
        raw.execute(
            "INSERT INTO tasks VALUES ('old', 'working', '{\"n\": 1}', 'null', NULL, "
            "'2025-01-02T03:04:05.678901+00:00', '2025-01-02T03:04:05.678901+00:00', 4)"
        )
        raw.execute("PRAGMA user_version = 1")
    raw.close()
    async with SqliteTaskStore(path) as store:
        assert await store.get_task("old") == task("old", params={"n": 1}, pushed=4)
        assert await store.acquire_lease("old", "a", LONG) is not None
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "store.db"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        SqliteTaskStore(path)


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not sqlite, just text long enough to have a header" * 10)
    with pytest.raises(StoreError, match=r"store\.db"):
        SqliteTaskStore(path)


async def test_sqlite_reports_a_damaged_row(tmp_path):
    path = tmp_path / "store.db"
    async with SqliteTaskStore(path) as store:
        await store.save_task(task("t"))
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE tasks SET state = 'exploded'")
    raw.close()
    async with SqliteTaskStore(path) as store:
        with pytest.raises(StoreError, match="damaged"):
            await store.get_task("t")
