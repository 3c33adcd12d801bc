"""What only the PostgreSQL store promises: migrations, the pool, several processes, outages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import textwrap

import psycopg
import pytest

from mqttpush import BackgroundTaskAgent, Fabric, TaskContext
from mqttpush.errors import (
    ConfigurationError,
    InternalError,
    StoreError,
    StoreSchemaError,
    StoreUnavailableError,
)
from mqttpush.models import TaskState
from mqttpush.store.postgres import (
    SCHEMA_VERSION,
    PostgresTaskStore,
    migrate,
    schema_version,
)
from mqttpush.store.postgres.schema import migrations
from tests.test_store import LONG, SHORT, task

EXPIRED = 0.2


def _rows(url: str, statement: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.encode())
        return cur.fetchall() if cur.description else []


# --- migrations ------------------------------------------------------------------------


async def test_migrate_a_fresh_database_then_again_is_a_no_op(postgres_url):
    assert await schema_version(postgres_url) == 0
    with pytest.raises(StoreSchemaError, match=r"schema version 0.*mqttpush store migrate"):
        await PostgresTaskStore(postgres_url).open()
    applied = await migrate(postgres_url)
    assert [str(m) for m in applied] == [
        "0001_tasks",
        "0002_leases",
        "0003_endpoint_options",
        "0004_replies",
    ]
    assert SCHEMA_VERSION == len(migrations()) == 4
    assert await migrate(postgres_url) == []
    assert await schema_version(postgres_url) == SCHEMA_VERSION
    recorded = _rows(postgres_url, "SELECT version, name FROM mqttpush_schema ORDER BY version")
    assert recorded == [(1, "tasks"), (2, "leases"), (3, "endpoint_options"), (4, "replies")]
    async with PostgresTaskStore(postgres_url) as store:  # now it opens
        await store.save_task(task("t"))
        assert await store.get_task("t") == task("t")


async def test_pending_migrations_are_applied_on_request_keeping_the_data(postgres_url):
    first = migrations()[0]
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # a database at version 1
        conn.execute(first.sql.encode())
        conn.execute(
            "CREATE TABLE mqttpush_schema (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO mqttpush_schema (version, name) VALUES (1, 'tasks')")
        conn.execute(
            "INSERT INTO mqttpush_tasks (task_id, state, params, result, created_at, updated_at, "
            "pushed) VALUES ('old', 'working', '{\"n\": 1}', 'null', now(), now(), 4)"
        )
    with pytest.raises(StoreSchemaError, match="schema version 1, this mqttpush needs 4"):
        await PostgresTaskStore(postgres_url).open()
    async with PostgresTaskStore(postgres_url, migrate=True) as store:
        old = await store.get_task("old")
        assert old is not None
        assert (old.state, old.params, old.pushed) == (TaskState.WORKING, {"n": 1}, 4)
        assert await store.acquire_lease("old", "a", LONG) is not None
    assert await schema_version(postgres_url) == 4


async def test_a_newer_schema_is_refused_by_the_store_and_by_migrate(postgres_url):
    await migrate(postgres_url)
    _rows(postgres_url, "INSERT INTO mqttpush_schema (version, name) VALUES (99, 'future')")
    with pytest.raises(StoreSchemaError, match="schema version 99 is newer than 4"):
        await PostgresTaskStore(postgres_url).open()
    with pytest.raises(StoreSchemaError, match="upgrade mqttpush"):
        await PostgresTaskStore(postgres_url, migrate=True).open()
    with pytest.raises(StoreSchemaError, match="99"):
        await migrate(postgres_url)


async def test_concurrent_migrations_apply_each_step_once(postgres_url):
    results = await asyncio.gather(*(migrate(postgres_url) for _ in range(4)))
    applied = [str(m) for result in results for m in result]
    assert sorted(applied) == [
        "0001_tasks",
        "0002_leases",
        "0003_endpoint_options",
        "0004_replies",
    ]
    assert len(_rows(postgres_url, "SELECT * FROM mqttpush_schema")) == 4


def test_a_url_that_is_not_a_connection_string_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="PostgreSQL connection string"):
        PostgresTaskStore("postgresql://[::1")


async def test_messages_name_the_database_but_never_the_password(postgres):
    url = f"postgresql://postgres:s3cret@127.0.0.1:{postgres.port}/no_such_db"
    with pytest.raises(StoreUnavailableError) as caught:
        await PostgresTaskStore(url, timeout=2).open()
    assert f"127.0.0.1:{postgres.port}/no_such_db" in str(caught.value)
    assert "s3cret" not in str(caught.value)


# --- the pool ----------------------------------------------------------------------------


async def test_the_pool_bounds_connections_and_serves_many_callers(postgres_url):
    await migrate(postgres_url)
    async with PostgresTaskStore(postgres_url, pool_size=3) as store:
        await asyncio.gather(*(store.save_task(task(f"t{i}", pushed=i)) for i in range(60)))
        got = await asyncio.gather(*(store.get_task(f"t{i}") for i in range(60)))
        assert [t.pushed if t else None for t in got] == list(range(60))
        [(connections,)] = _rows(
            postgres_url,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'mqttpush' AND datname = current_database()",
        )
        assert 1 <= connections <= 3


async def test_leases_are_renewed_and_taken_over_while_every_pooled_connection_is_held(
    postgres_url,
):
    await migrate(postgres_url)
    async with PostgresTaskStore(postgres_url, pool_size=2, timeout=0.5) as store:
        assert await store.create_task(task("mine"), "a", LONG) is not None
        assert await store.create_task(task("dead"), "b", EXPIRED) is not None
        await asyncio.sleep(EXPIRED * 2)
        async with contextlib.AsyncExitStack() as held:
            for _ in range(2):  # every connection of the pool, as busy writers would
                await held.enter_async_context(store._connection())
            with pytest.raises(StoreUnavailableError, match="no connection in time"):
                await store.get_task("mine")  # the pool is exhausted
            assert await store.renew_leases("a", LONG) == {"mine"}
            taken = await store.take_over_expired("a", LONG)
            assert [(t.task.task_id, t.previous_owner) for t in taken] == [("dead", "b")]
        lease = await store.lease("dead")  # the pool serves again
        assert lease is not None
        assert lease.owner == "a"


async def test_the_lease_connection_gives_up_after_its_timeout_and_reconnects(postgres_url):
    await migrate(postgres_url)
    async with PostgresTaskStore(postgres_url, timeout=5, lease_timeout=0.5) as store:
        assert await store.create_task(task("mine"), "a", LONG) is not None
        assert await store.renew_leases("a", LONG) == {"mine"}
        with psycopg.connect(postgres_url) as blocker:  # a transaction holding the row
            blocker.execute("SELECT 1 FROM mqttpush_tasks WHERE task_id = 'mine' FOR UPDATE")
            with pytest.raises(StoreUnavailableError, match="no answer on the mqttpush-leases"):
                await store.renew_leases("a", LONG)
        assert await store.renew_leases("a", LONG) == {"mine"}
        _rows(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'mqttpush-leases' AND datname = current_database()",
        )
        renewed = None
        for _ in range(2):  # the first may find the connection dead; the next reconnects
            with contextlib.suppress(StoreUnavailableError):
                renewed = await store.renew_leases("a", LONG)
        assert renewed == {"mine"}
        assert store.leases_connection.connects == 3


async def test_a_caller_waits_at_most_timeout_for_a_pooled_connection(postgres_url):
    await migrate(postgres_url)
    async with PostgresTaskStore(postgres_url, pool_size=1, timeout=0.5) as store:
        async with store._connection():  # hold the only connection
            with pytest.raises(StoreUnavailableError, match="no connection in time"):
                await store.get_task("t")
        assert await store.get_task("t") is None  # given back: served again


# --- several processes -----------------------------------------------------------------


async def test_two_stores_racing_to_take_over_claim_each_task_once(postgres_url):
    await migrate(postgres_url)
    async with (
        PostgresTaskStore(postgres_url, pool_size=4) as one,
        PostgresTaskStore(postgres_url, pool_size=4) as two,
    ):
        for i in range(60):
            await one.create_task(task(f"t{i:02d}", created=i), "dead", SHORT)
        await asyncio.sleep(EXPIRED)

        async def claim(store: PostgresTaskStore, owner: str) -> list[str]:
            won: list[str] = []
            for _ in range(100):  # bounded: 60 tasks, at least one claimed per round
                batch = await store.take_over_expired(owner, LONG, limit=7)
                if not batch:
                    return won
                won += [c.task.task_id for c in batch]
            return won

        got = await asyncio.gather(*(claim(s, f"copy-{i}") for i, s in enumerate([one, two] * 2)))
        claimed = [task_id for won in got for task_id in won]
        assert sorted(claimed) == [f"t{i:02d}" for i in range(60)]  # each once, none left
        assert all(won for won in got[:2])  # both stores took part

        # The same race on one task, many times: exactly one winner each time.
        await one.create_task(task("contested"), "dead", SHORT)
        await asyncio.sleep(EXPIRED)
        leases = await asyncio.gather(
            *(s.acquire_lease("contested", f"copy-{i}", LONG) for i, s in enumerate([one, two] * 5))
        )
        assert len([lease for lease in leases if lease is not None]) == 1


_RESERVER = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from mqttpush.store.postgres import PostgresTaskStore

    async def main(url):
        got = []
        async with PostgresTaskStore(url, pool_size=2) as store:
            for _ in range(60):
                got += list(await store.reserve_seq("t", random.randint(1, 5)))
        print(json.dumps(got))

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.timeout_s(90)
async def test_processes_reserving_sequence_numbers_never_share_one(postgres_url):
    await migrate(postgres_url)
    async with PostgresTaskStore(postgres_url) as store:
        await store.save_task(task("t", pushed=10))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _RESERVER, postgres_url, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    outputs = await asyncio.gather(*(proc.communicate() for proc in procs))
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    numbers = [n for out, _ in outputs for n in json.loads(out)]
    assert len(numbers) == len(set(numbers))  # never the same number twice
    assert sorted(numbers) == list(range(11, 11 + len(numbers)))  # and no gap
    async with PostgresTaskStore(postgres_url) as store:
        stored = await store.get_task("t")
        assert stored is not None
        assert stored.pushed == 10 + len(numbers)


# --- outages ---------------------------------------------------------------------------


@pytest.mark.timeout_s(120)
async def test_a_stopped_server_raises_a_typed_error_and_the_store_recovers(private_postgres):
    url = private_postgres.url()
    await migrate(url)
    async with PostgresTaskStore(url, timeout=1.0) as store:
        await store.save_task(task("t"))
        await asyncio.to_thread(private_postgres.stop)
        for _ in range(3):  # every call fails the same typed way, none hangs
            with pytest.raises(StoreUnavailableError):
                await store.get_task("t")
        with pytest.raises(StoreError):
            await store.save_task(task("u"))
        await asyncio.to_thread(private_postgres.start)
        for _ in range(50):  # bounded: the pool reconnects in the background
            try:
                assert await store.get_task("t") == task("t")
                break
            except StoreUnavailableError:
                await asyncio.sleep(0.2)
        else:
            pytest.fail("the store did not recover after the server came back")
        await store.save_task(task("u"))


class _Worker(BackgroundTaskAgent):
    async def run_background_task(self, task: TaskContext) -> dict[str, bool]:
        return {"ok": True}


@pytest.mark.timeout_s(120)
async def test_an_agent_whose_store_is_down_answers_with_an_error_and_keeps_serving(
    private_postgres, settings
):
    url = private_postgres.url()
    await migrate(url)
    async with PostgresTaskStore(url, timeout=1.0) as store, Fabric(settings) as fabric:
        agent = await fabric.serve(_Worker(store=store), "worker@test.fabric")
        worker = fabric.remote(agent.address)
        await worker.call("run_task", {"task_id": "before"})
        await asyncio.to_thread(private_postgres.stop)
        with pytest.raises(InternalError) as caught:  # answered, with the typed error's name
            await worker.call("run_task", {"task_id": "during"}, timeout=15)
        assert caught.value.data["type"] == "StoreUnavailableError"
        await asyncio.to_thread(private_postgres.start)
        # A new task id per attempt: a run_task whose save failed leaves its id behind
        # in the agent, not run (the agent's concern, not the store's).
        for attempt in range(50):  # bounded: the pool reconnects in the background
            task_id = f"after-{attempt}"
            try:
                await worker.call("run_task", {"task_id": task_id}, timeout=15)
                break
            except InternalError:
                await asyncio.sleep(0.2)
        status = await worker.call("get_task_status", {"task_id": task_id, "wait": 10})
        assert status["state"] == TaskState.COMPLETED
        assert await store.get_task(task_id) is not None
