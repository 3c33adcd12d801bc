"""Push notifications and background tasks against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from mqttpush import (
    BackgroundTaskAgent,
    Fabric,
    PushNotification,
    TaskContext,
    TaskNotCancelableError,
    TaskNotFoundError,
    TaskState,
    TaskStatus,
)
from mqttpush.models import DeliveryState
from mqttpush.routing import acknowledged
from mqttpush.testing import Collector, eventually
from mqttpush.tools.demo import PushSender, expected_notifications, run_client, seed_agents
from mqttpush.tools.demo.client import wait_for_task
from mqttpush.transport import Message
from mqttpush.transport.mqtt import MqttTransport

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"
NINE = expected_notifications(9)


class Broken(BackgroundTaskAgent):
    async def run_background_task(self, task: TaskContext) -> None:
        await task.push("about to fail")
        raise KeyError("missing thing")


async def test_seed_scenario_end_to_end(settings):
    async with seed_agents(settings) as (sender, receiver):
        result = await run_client(settings)
        assert result == {"notifications": NINE}
        assert receiver.stats.notifications == 10  # nine and the final "completed"
        assert receiver.stats.notifications_unknown_task == 0
        assert receiver.stats.handler_failures == 0
        (sender_record,) = [sender.tasks.get(t) for t in list(sender.tasks._tasks)]
        assert sender_record.state is TaskState.COMPLETED
        assert sender_record.result == {"sent": 9}


async def test_fifty_receiver_tasks_at_once_each_get_their_own_nine(settings):
    async with seed_agents(settings, interval=0.01) as (sender, _), Fabric(settings) as client:
        receiver = client.remote(RECEIVER)
        started = await asyncio.gather(*(receiver.run_task() for _ in range(50)))
        ids = [TaskStatus.model_validate(s).task_id for s in started]
        assert len(set(ids)) == 50
        finals = await asyncio.gather(
            *(wait_for_task(client, RECEIVER, t, timeout=60) for t in ids)
        )
        assert all(f.result == {"notifications": NINE} for f in finals)
        assert len(sender.tasks) == 50


@pytest.mark.timeout_s(30)
async def test_cancel_stops_the_work_and_its_pushes(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=10_000, interval=0.01), SENDER)
        collector = await fabric.serve(Collector(), "collector@fame.fabric")
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(
            config={"task_id": "long", "address": "collector@fame.fabric"}
        )
        await sender.run_task(task_id="long")
        await eventually(lambda: len(collector.got) >= 5)
        status = TaskStatus.model_validate(await sender.cancel_task(task_id="long"))
        assert status.state is TaskState.CANCELED
        await eventually(lambda: collector.got[-1].state.is_terminal)
        count_at_cancel = len(collector.got)
        await asyncio.sleep(0.5)  # the old task would have pushed ~50 more by now
        assert len(collector.got) == count_at_cancel
        assert collector.got[-1].state is TaskState.CANCELED
        assert [n.seq for n in collector.got] == list(range(1, count_at_cancel + 1))
        assert count_at_cancel < 200
        with pytest.raises(TaskNotCancelableError):
            await sender.cancel_task(task_id="long")
        assert (await sender.get_task_status(task_id="long"))["state"] == "canceled"


async def test_several_endpoints_each_get_every_notification(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=9, interval=0), SENDER)
        first = await fabric.serve(Collector(), "a@fame.fabric")
        second = await fabric.serve(Collector(), "b@fame.fabric")
        sender = fabric.remote(SENDER)
        for who in ("a@fame.fabric", "b@fame.fabric"):
            await sender.register_push_endpoint(config={"task_id": "t", "address": who})
        assert len(await sender.list_push_endpoints(task_id="t")) == 2
        await sender.run_task(task_id="t")
        await eventually(lambda: len(first.got) == 10 and len(second.got) == 10)
        assert [n.message for n in first.got[:9]] == NINE
        assert [n.id for n in first.got] == [n.id for n in second.got]
        assert first.got[-1].state is TaskState.COMPLETED


async def test_run_task_with_the_same_id_runs_once(settings):
    async with Fabric(settings) as fabric:
        sender_agent = await fabric.serve(PushSender(count=3, interval=0.05), SENDER)
        collector = await fabric.serve(Collector(), "c@fame.fabric")
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(config={"task_id": "once", "address": "c@fame.fabric"})
        await asyncio.gather(*(sender.run_task(task_id="once") for _ in range(5)))
        await wait_for_task(fabric, SENDER, "once", timeout=10)
        await eventually(lambda: len(collector.got) == 4)
        await asyncio.sleep(0.2)
        assert len(collector.got) == 4
        assert len(sender_agent.tasks) == 1


async def test_a_failing_task_ends_failed_and_says_why(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(Broken(), "broken@fame.fabric")
        collector = await fabric.serve(Collector(), "c@fame.fabric")
        broken = fabric.remote("broken@fame.fabric")
        await broken.register_push_endpoint(config={"task_id": "f", "address": "c@fame.fabric"})
        await broken.run_task(task_id="f")
        await eventually(lambda: len(collector.got) == 2)
        status = TaskStatus.model_validate(await broken.get_task_status(task_id="f", wait=5))
        assert status.state is TaskState.FAILED
        assert status.error is not None
        assert status.error.type == "KeyError"
        assert collector.got[-1].state is TaskState.FAILED
        assert "missing thing" in collector.got[-1].message
        with pytest.raises(TaskNotFoundError):
            await broken.get_task_status(task_id="never")


async def test_bad_notifications_are_counted_and_the_agent_keeps_working(settings):
    async with seed_agents(settings) as (_, receiver), Fabric(settings) as fabric:
        raw = MqttTransport(settings.broker)
        await raw.connect()
        base = fabric.topics.push_base(receiver.address)
        good = PushNotification(task_id="stray", seq=1, message="hello")
        payloads = [
            (f"{base}/stray", good.model_dump_json().encode()),  # valid, but no such task
            (f"{base}/x", b"{not json"),
            (f"{base}/x", b'{"task_id": "x", "seq": "one", "message": 1}'),
            (f"{base}/other", good.model_dump_json().encode()),  # task id differs from the topic
            (f"{base}/x", b"\x00" * 1000),
        ]
        for topic, payload in payloads:
            await raw.publish(Message(topic=topic, payload=payload))
        await raw.disconnect()
        await eventually(lambda: receiver.stats.notifications_malformed == 4)
        await eventually(lambda: receiver.stats.notifications_unknown_task == 1)
        assert await run_client(settings) == {"notifications": NINE}


async def test_an_exception_in_on_message_never_stops_the_agent(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=9, interval=0), SENDER)
        collector = await fabric.serve(Collector(fail_first=3), "c@fame.fabric")
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(config={"task_id": "t", "address": "c@fame.fabric"})
        await sender.run_task(task_id="t")
        await eventually(lambda: len(collector.got) == 7)
        assert collector.stats.handler_failures == 3
        assert collector.got[-1].state is TaskState.COMPLETED


async def test_notification_payload_follows_the_protocol(settings):
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=2, interval=0), SENDER)
        collector = await fabric.serve(Collector(), "c@fame.fabric")
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(
            config={"task_id": "p", "address": "c@fame.fabric", "token": "tok"}
        )
        await sender.run_task(task_id="p")
        await eventually(lambda: len(collector.got) == 3)
        first = json.loads(collector.got[0].model_dump_json())
        assert set(first) >= {"id", "task_id", "seq", "state", "message", "timestamp"}
        assert (first["task_id"], first["seq"], first["state"], first["message"]) == (
            "p",
            1,
            "working",
            "Notification #1",
        )
        assert len({n.id for n in collector.got}) == 3


@pytest.mark.timeout_s(30)
async def test_receipts_of_a_burst_travel_together_and_every_one_arrives(settings):
    tap = MqttTransport(settings.broker)  # an independent client watching the receipts
    await tap.connect()
    counts = {"messages": 0, "receipts": 0}

    async def watch() -> None:
        async for message in acknowledged(tap):
            counts["messages"] += 1
            body = json.loads(message.payload)
            counts["receipts"] += len(body) if isinstance(body, list) else 1

    try:
        await tap.subscribe(f"{settings.topic_prefix}/fame.fabric/sender/ack")
        watching = asyncio.create_task(watch())
        async with Fabric(settings) as sender_fabric, Fabric(settings) as receiver_fabric:
            sender = await sender_fabric.serve(PushSender(count=500, interval=0), SENDER)
            collector = await receiver_fabric.serve(Collector(), "c@fame.fabric")
            remote = receiver_fabric.remote(SENDER)
            await remote.register_push_endpoint(config={"task_id": "b", "address": "c@fame.fabric"})
            await remote.run_task(task_id="b")
            await eventually(lambda: len(collector.got) == 501)
            await eventually(
                lambda: sender.deliveries.summary("b") == {DeliveryState.DELIVERED: 501}
            )
        await eventually(lambda: counts["receipts"] == 501)
        assert collector.stats.notifications_duplicate == 0
        if settings.broker.client == "native":  # aiomqtt hands over one message per loop turn
            assert counts["messages"] < counts["receipts"]  # bursts shared messages
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    finally:
        await tap.disconnect()
