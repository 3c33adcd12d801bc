"""Edge cases found in review: validation at the edge, slots, late cancels, stray failures."""

from __future__ import annotations

import asyncio

import pytest

from mqttpush import (
    Fabric,
    InvalidParamsError,
    TaskFinishedError,
    TaskState,
    TaskStatus,
)
from mqttpush.testing import Collector, eventually
from mqttpush.tools.demo import PushReceiver, PushSender
from mqttpush.tools.demo.client import wait_for_task
from mqttpush.transport.mqtt import MqttTransport

SENDER = "sender@fame.fabric"


async def test_params_are_validated_at_the_edge(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=0), SENDER)
        sender = fabric.remote(SENDER)
        with pytest.raises(InvalidParamsError) as bad_id:
            await sender.run_task(task_id="a/b")
        assert bad_id.value.data[0]["loc"] == ["task_id"]
        await sender.run_task(task_id="ok")
        with pytest.raises(InvalidParamsError):
            await sender.get_task_status(task_id="ok", wait=301)
        with pytest.raises(InvalidParamsError):
            await sender.get_task_status(task_id="ok", wait=-1)
        with pytest.raises(InvalidParamsError):
            await sender.register_push_endpoint(config={"task_id": "t", "address": "no-domain"})


async def test_registering_for_a_finished_task_is_refused(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=0), SENDER)
        sender = fabric.remote(SENDER)
        await sender.run_task(task_id="done")
        await wait_for_task(fabric, SENDER, "done", timeout=10)
        with pytest.raises(TaskFinishedError) as info:
            await sender.register_push_endpoint(config={"task_id": "done", "address": "x@y"})
        assert info.value.code == -32004


async def test_long_polls_hold_no_request_slot(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=3, interval=0.3, max_concurrency=1), SENDER)
        sender = fabric.remote(SENDER)
        await sender.run_task(task_id="slow")
        polls = [
            asyncio.create_task(
                sender.call("get_task_status", {"task_id": "slow", "wait": 10}, timeout=15)
            )
            for _ in range(4)
        ]
        await asyncio.sleep(0.1)
        # With one slot, a poll holding it would block this call until the task ended.
        async with asyncio.timeout(0.5):
            assert await sender.list_push_endpoints(task_id="slow") == []
        states = {TaskStatus.model_validate(p).state for p in await asyncio.gather(*polls)}
        assert states == {TaskState.COMPLETED}


async def test_push_token_travels_with_each_notification(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=2, interval=0), SENDER)
        collector = await fabric.serve(Collector(), "c@fame.fabric")
        raw = MqttTransport(settings.broker)
        await raw.connect()
        await raw.subscribe(f"{fabric.topics.push_base(collector.address)}/+")
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(
            config={"task_id": "tok", "address": "c@fame.fabric", "token": "s3cret"}
        )
        await sender.run_task(task_id="tok")
        seen = []
        async with asyncio.timeout(10):
            async for message in raw.messages():
                seen.append(message)
                if len(seen) == 3:
                    break
        await raw.disconnect()
        assert {m.user_property("mqttpush-token") for m in seen} == {"s3cret"}
        assert {m.user_property("mqttpush-sender") for m in seen} == {SENDER}
        assert {m.user_property("mqttpush-op") for m in seen} == {"push"}
        assert all(m.qos == 1 and m.content_type == "application/json" for m in seen)


async def test_an_escaping_exception_never_stops_the_fabric(settings):
    async def bug() -> None:
        raise RuntimeError("a bug in some task")

    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=1, interval=0), SENDER)
        fabric.spawn(bug(), name="buggy")
        await eventually(lambda: fabric.task_failures == 1)
        sender = fabric.remote(SENDER)
        await sender.run_task(task_id="after")
        assert (
            await wait_for_task(fabric, SENDER, "after", timeout=10)
        ).state is TaskState.COMPLETED


async def test_a_receiver_that_gives_up_cancels_the_senders_task(settings):
    async with Fabric(settings) as fabric:
        sender_agent = await fabric.serve(PushSender(count=1000, interval=0.05), SENDER)
        await fabric.serve(PushReceiver(SENDER, task_timeout=0.5), "receiver@fame.fabric")
        receiver = fabric.remote("receiver@fame.fabric")
        started = TaskStatus.model_validate(await receiver.run_task())
        status = TaskStatus.model_validate(
            await receiver.get_task_status(task_id=started.task_id, wait=10)
        )
        assert status.state is TaskState.FAILED
        assert status.error is not None
        assert "did not finish within 0.5 s" in status.error.message
        (record,) = [sender_agent.tasks.get(t) for t in list(sender_agent.tasks._tasks)]
        await eventually(lambda: record.state is TaskState.CANCELED)
        assert record.pushed < 100


async def test_push_tokens_are_never_given_away_nor_swapped(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=1, interval=0), SENDER)
        sender = fabric.remote(SENDER)
        config = {"task_id": "guarded", "address": "c@fame.fabric", "token": "s3cret"}
        registered = await sender.register_push_endpoint(config=config)
        assert registered["token"] == "********"
        listed = await sender.list_push_endpoints(task_id="guarded")
        assert [c["token"] for c in listed] == ["********"]
        with pytest.raises(InvalidParamsError) as refused:
            await sender.register_push_endpoint(config={**config, "token": "mine-now"})
        # A list of validation errors, as docs/protocol.md gives for every -32602.
        (problem,) = refused.value.data
        assert problem["loc"] == ["config", "token"]
        assert problem["type"] == "token_mismatch"
        assert "already registered for this task with another token" in problem["msg"]
        # The same token again is a harmless repeat.
        assert (await sender.register_push_endpoint(config=config))["token"] == "********"
