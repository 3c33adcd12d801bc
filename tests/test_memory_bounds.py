"""What a sender and a receiver keep after their tasks end, and an idle sender's timers.

The bounds are checked structurally (records, bytes and objects kept; wake-ups counted),
never by timing.
"""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING

import pytest

from mqttpush import Fabric, TaskStatus
from mqttpush.agent.giveback import GiveBackWhenIdle, give_back
from mqttpush.agent.resend import ResendQueue
from mqttpush.agent.tasks import TaskRegistry
from mqttpush.agent.tracked import TrackedDelivery
from mqttpush.models import DeliveryState, ErrorInfo, TaskState, utc_now
from mqttpush.store import Delivery, StoredTask
from mqttpush.store.memory import ROW_BYTES, MemoryTaskStore
from mqttpush.testing import eventually
from mqttpush.tools.demo import PushSender, run_client, seed_agents
from mqttpush.tools.demo.client import wait_for_task
from mqttpush.transport import Message

if TYPE_CHECKING:
    from mqttpush.settings import Settings

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"


def _with_agent(settings: Settings, **agent: object) -> Settings:
    return settings.model_copy(update={"agent": settings.agent.model_copy(update=agent)})


def _delivery(n: int, task_id: str = "t") -> TrackedDelivery:
    row = Delivery(
        notification_id=f"n{n}",
        task_id=task_id,
        seq=n,
        endpoint="e@d.fabric",
        state=DeliveryState.QUEUED,
        attempts=0,
        detail=None,
        updated_at=utc_now(),
    )
    return TrackedDelivery.of_row(row, Message("t/push", b"{}", qos=1))


# The resend queue, alone ---------------------------------------------------------------


async def test_only_deliveries_past_their_deadline_and_still_unreceipted_are_due() -> None:
    queue = ResendQueue(timeout=0.0, slack=0.0)
    waiting, receipted, republished = _delivery(1), _delivery(2), _delivery(3)
    for delivery in (waiting, receipted, republished):
        delivery.published(None)
        queue.schedule(delivery)
    receipted.move(DeliveryState.DELIVERED)
    republished.published(None)  # published again: its first deadline is stale
    queue.schedule(republished)
    assert len(queue) == 4
    assert queue.due() == [waiting, republished]
    assert len(queue) == 0


async def test_with_no_deadline_queued_the_resend_wait_never_wakes() -> None:
    queue = ResendQueue(timeout=0.01, slack=0.0)
    delivery = _delivery(1)
    delivery.published(None)
    queue.schedule(delivery)
    queue.clear()  # the receipt came: nothing awaits one
    waiting = asyncio.create_task(queue.wait())
    for _ in range(20):  # twenty timeouts' worth of loop turns: nothing is due
        await asyncio.sleep(0.01)
    assert not waiting.done()
    assert queue.wakeups == 0
    delivery.published(None)
    queue.schedule(delivery)  # a new publish: the wait gets a deadline, and wakes for it
    await asyncio.wait_for(waiting, timeout=5)
    assert queue.wakeups == 1


# Giving memory back ----------------------------------------------------------------------


async def test_memory_is_given_back_only_once_no_task_runs_and_records_folded() -> None:
    state = {"running": 1, "records": 5}
    idle = GiveBackWhenIdle(0.01, lambda: state["running"], lambda: state["records"], tries=50)
    idle.arm()
    await asyncio.sleep(0.05)
    assert idle.given == 0  # a task runs: its own end re-arms
    state["running"] = 0
    idle.arm()
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert idle.given == 0  # records left to fold: checked again, not given
    state["records"] = 0
    await eventually(lambda: idle.given == 1, timeout=5)
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert idle.given == 1  # once per end of work, no timer left behind


def test_give_back_collects_cycles() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.disable()
    try:
        for _ in range(100):
            Cycle()
        assert give_back() >= 100
    finally:
        gc.enable()


# Finished tasks, in the registry and the in-memory store -----------------------------


def test_finished_results_are_kept_as_json_and_bounded_in_bytes() -> None:
    reg = TaskRegistry(max_finished=1_000, max_finished_bytes=10_000)
    result = {"notifications": [f"Notification #{i}" for i in range(100)]}  # ~2 KB of JSON
    for i in range(20):
        runner, _ = reg.create(f"t{i}")
        runner.transition(TaskState.WORKING)
        runner.transition(TaskState.COMPLETED, result=result)
        assert reg.finished_bytes <= 10_000
    assert len(reg) == 10_000 // runner.result_bytes
    assert reg.get("t19").result == result  # decoded from its JSON, equal


async def test_the_memory_store_keeps_finished_tasks_within_its_count_and_bytes() -> None:
    store = MemoryTaskStore(max_finished=5, max_finished_bytes=50 * ROW_BYTES)
    now = utc_now()
    for i in range(30):
        task = StoredTask(f"t{i}", TaskState.WORKING, {"n": i}, None, None, now, now, 0)
        await store.save_task(task)
        rows = [
            Delivery(f"n{i}-{k}", f"t{i}", k, "e@d.fabric", DeliveryState.DELIVERED, 1, None, now)
            for k in range(20)
        ]
        await store.save_deliveries(rows[:15])  # rows of a running task are its own
        await store.save_task(
            StoredTask(f"t{i}", TaskState.COMPLETED, {"n": i}, {"r": i}, None, now, now, 0)
        )
        await store.save_deliveries(rows[15:])  # late rows of a finished task count too
        assert store.finished_bytes <= 50 * ROW_BYTES
    kept = [i for i in range(30) if await store.get_task(f"t{i}") is not None]
    assert kept == [28, 29]  # 20 rows each: two fit in 50 rows' worth
    assert await store.deliveries("t27") == []
    assert len(await store.deliveries("t29")) == 20
    stored = await store.get_task("t29")
    assert stored is not None
    assert (stored.params, stored.result) == ({"n": 29}, {"r": 29})


async def test_rows_that_alone_pass_the_byte_bound_go_the_task_stays() -> None:
    store = MemoryTaskStore(max_finished_bytes=10 * ROW_BYTES)
    now = utc_now()
    await store.save_task(StoredTask("big", TaskState.WORKING, None, None, None, now, now, 0))
    rows = [
        Delivery(f"n{k}", "big", k, "e@d.fabric", DeliveryState.DELIVERED, 1, None, now)
        for k in range(50)
    ]
    await store.save_deliveries(rows)  # a running task's rows are its own
    assert len(await store.deliveries("big")) == 50
    done = StoredTask("big", TaskState.COMPLETED, None, {"sent": 50}, None, now, now, 0)
    await store.save_task(done)
    assert await store.get_task("big") is not None  # the last one finished stays
    assert await store.deliveries("big") == []  # but not 50 rows over a bound of 10
    assert store.finished_bytes <= 10 * ROW_BYTES


async def test_rows_of_tasks_the_memory_store_does_not_keep_are_bounded_too() -> None:
    store = MemoryTaskStore(max_finished_bytes=10 * ROW_BYTES)
    now = utc_now()
    for i in range(100):  # late rows of tasks dropped long ago, one each
        row = Delivery(f"n{i}", f"gone{i}", 1, "e@d.fabric", DeliveryState.EXPIRED, 5, None, now)
        await store.save_delivery(row)
        assert store.finished_bytes <= 10 * ROW_BYTES
    kept = [i for i in range(100) if await store.deliveries(f"gone{i}")]
    assert kept == list(range(90, 100))


async def test_the_task_that_finished_last_stays_even_over_the_byte_bound() -> None:
    store = MemoryTaskStore(max_finished_bytes=10)
    now = utc_now()
    error = ErrorInfo(type="Boom", message="x" * 100)
    for i in range(3):
        await store.save_task(StoredTask(f"t{i}", TaskState.FAILED, None, None, error, now, now, 0))
    assert [i for i in range(3) if await store.get_task(f"t{i}") is not None] == [2]


# Against the broker ----------------------------------------------------------------------


@pytest.mark.timeout_s(60)
async def test_an_idle_sender_s_resend_loop_does_not_wake(settings: Settings) -> None:
    settings = _with_agent(settings, receipt_timeout=0.2, delivery_attempts=2)
    async with Fabric(settings) as fabric:
        sender = await fabric.serve(PushSender(count=3, interval=0.0), SENDER)
        remote = fabric.remote(SENDER)
        # Nobody serves this endpoint: no receipt, so the loop must wake to re-send.
        config = {"task_id": "lost", "address": "nobody@fame.fabric"}
        await remote.register_push_endpoint(config=config)
        await remote.run_task(task_id="lost")
        await wait_for_task(fabric, SENDER, "lost", timeout=20)
        await eventually(lambda: sender.deliveries.unsettled() == (0, 0), timeout=20)
        woke = sender.deliveries.resend_wakeups
        assert woke >= 1  # the deadlines did wake it, and the deliveries expired
        assert sender.deliveries.summary("lost") == {DeliveryState.EXPIRED: 4}
        for _ in range(10):  # ten receipt timeouts with nothing awaiting a receipt
            await asyncio.sleep(0.2)
        assert sender.deliveries.resend_wakeups == woke


@pytest.mark.timeout_s(90)
async def test_settled_tasks_keep_their_counts_not_their_records(settings: Settings) -> None:
    settings = _with_agent(settings, receipt_timeout=0.3)
    async with seed_agents(settings, count=30) as (sender, _):
        for _ in range(3):
            assert len((await run_client(settings))["notifications"]) == 30
        await eventually(lambda: sender.deliveries.kept.records() == 0, timeout=20)
        await eventually(lambda: sender._running.give_back.given >= 1, timeout=20)
        folded = sender.deliveries.kept.folded()
        assert len(folded) == 3
        woke = sender.deliveries.resend_wakeups
        task_id = folded.pop()
        async with Fabric(settings) as client:
            remote = client.remote(SENDER)
            status = TaskStatus.model_validate(await remote.get_task_status(task_id=task_id))
            assert status.deliveries == {DeliveryState.DELIVERED: 31}
            rows = await remote.get_delivery_status(task_id=task_id)
            assert len(rows) == 31  # from the store, by sequence number
            assert [row["seq"] for row in rows] == sorted(row["seq"] for row in rows)
        assert sender.deliveries.resend_wakeups == woke


@pytest.mark.timeout_s(90)
async def test_what_finished_tasks_keep_follows_the_settings(settings: Settings) -> None:
    settings = _with_agent(settings, max_finished_tasks=3, max_finished_bytes=40 * ROW_BYTES)
    async with seed_agents(settings, count=10) as (sender, receiver):
        for _ in range(6):
            await run_client(settings)
        store = sender.store
        assert isinstance(store, MemoryTaskStore)
        assert store.finished_bytes <= 40 * ROW_BYTES  # 11 rows per task: three fit
        assert len(sender.tasks) <= 3
        assert len(receiver.tasks) <= 3
        assert receiver.tasks.finished_bytes <= 40 * ROW_BYTES


async def _run_receiver_task(settings: Settings) -> str:
    async with Fabric(settings) as client:
        remote = client.remote(RECEIVER)
        task_id = TaskStatus.model_validate(await remote.run_task()).task_id
        status = await wait_for_task(client, RECEIVER, task_id, timeout=90)
        assert status.result is not None
        assert status.result["notifications"][-1] == "Notification #5000"
        return task_id


@pytest.mark.timeout_s(120)
async def test_a_large_returned_result_is_kept_once_as_json_not_as_objects(
    settings: Settings,
) -> None:
    count = 5_000  # about 95 KB of JSON: over the 64 KiB a runner keeps
    async with seed_agents(settings, count=count) as (_, receiver):
        task_id = await _run_receiver_task(settings)  # the client, and what it got, are gone
        await eventually(lambda: receiver.tasks.get(task_id).result_stored, timeout=10)
        assert receiver.tasks.get(task_id).result is None  # the store has the one copy
        gc.collect()
        lists = [o for o in gc.get_objects() if isinstance(o, list) and len(o) == count]
        assert lists == []  # neither the registry nor the store holds the list
        async with Fabric(settings) as client:
            raw = await client.remote(RECEIVER).get_task_status(task_id=task_id)
            again = TaskStatus.model_validate(raw)
            assert again.result["notifications"][-1] == f"Notification #{count}"
            rerun = TaskStatus.model_validate(
                await client.remote(RECEIVER).run_task(task_id=task_id)
            )
            assert rerun.result == again.result  # the same id again: the stored task
