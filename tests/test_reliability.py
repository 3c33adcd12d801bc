"""Fault injection against real Mosquitto processes: nothing lost, each handled once.

Every test starts its own broker (so it can kill it), and bounds every wait.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from mqttpush import (
    Agent,
    Fabric,
    PushNotification,
    SessionTakenOverError,
    TaskState,
    TaskStatus,
    operation,
)
from mqttpush.models import DeliveryState
from mqttpush.settings import AgentSettings, Settings
from mqttpush.testing import Collector, eventually
from mqttpush.tools.cli import agent_settings
from mqttpush.tools.demo import PushReceiver, PushSender
from mqttpush.tools.demo.client import wait_for_task
from mqttpush.tools.devbroker import LocalMosquitto
from mqttpush.transport import Message
from mqttpush.transport.mqtt import MqttTransport
from tests.conftest import CONFIG, REPO, make_settings

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"


def fast_receipts(settings: Settings) -> Settings:
    """Resend quickly in tests: a receipt is awaited for 0.5 s, up to 20 attempts."""
    agent = AgentSettings(receipt_timeout=0.5, delivery_attempts=20, publish_window=60)
    return settings.model_copy(update={"agent": agent})


@pytest.mark.timeout_s(90)
async def test_broker_killed_mid_task_loses_nothing_and_handles_each_once():
    with LocalMosquitto(CONFIG) as broker:
        settings = fast_receipts(make_settings(broker.host, broker.port))
        async with (
            Fabric(agent_settings(settings, SENDER)) as sender_fabric,
            Fabric(agent_settings(settings, RECEIVER)) as receiver_fabric,
            Fabric(settings) as client,
        ):
            sender = await sender_fabric.serve(PushSender(count=40, interval=0.05), SENDER)
            receiver = await receiver_fabric.serve(PushReceiver(SENDER, task_timeout=60), RECEIVER)
            await asyncio.to_thread(broker.wait_for_save, 10)  # sessions on disk
            started = TaskStatus.model_validate(await client.remote(RECEIVER).run_task())
            await eventually(lambda: receiver.stats.notifications >= 10)
            broker.kill()  # kill -9, in the middle of the pushes
            await asyncio.sleep(0.5)
            broker.start()
            final = await wait_for_task(client, RECEIVER, started.task_id, timeout=60)
            assert final.result == {"notifications": [f"Notification #{i}" for i in range(1, 41)]}
            assert receiver.stats.notifications == 41  # 40 and the final one, each handled once
            (task_id,) = sender.deliveries.tracked()
            await eventually(lambda: sender.deliveries.pending(task_id) == 0, timeout=30)
            assert sender.deliveries.summary(task_id) == {DeliveryState.DELIVERED: 41}


@pytest.mark.timeout_s(90)
async def test_receiver_killed_mid_task_gets_the_backlog_each_once(tmp_path):
    with LocalMosquitto(CONFIG) as broker:
        settings = fast_receipts(make_settings(broker.host, broker.port))
        record = tmp_path / "handled.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTPUSH_")}
        env.update(
            MQTTPUSH_BROKER__PORT=str(broker.port), MQTTPUSH_TOPIC_PREFIX=settings.topic_prefix
        )
        command = [sys.executable, "-m", "tests.agents", "collector", "c@fame.fabric", str(record)]

        def start() -> subprocess.Popen[str]:
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            return proc

        def handled() -> list[dict[str, Any]]:
            text = record.read_text() if record.exists() else ""
            return [json.loads(line) for line in text.splitlines()]

        collector = await asyncio.to_thread(start)
        try:
            async with Fabric(settings) as fabric:
                sender = await fabric.serve(PushSender(count=60, interval=0.05), SENDER)
                remote = fabric.remote(SENDER)
                await remote.register_push_endpoint(
                    config={"task_id": "t", "address": "c@fame.fabric"}
                )
                await remote.run_task(task_id="t")
                await eventually(lambda: len(handled()) >= 15)
                collector.kill()  # kill -9 while notifications keep coming
                collector.communicate(timeout=10)
                at_kill = len(handled())
                await asyncio.sleep(1.0)  # ~20 more are published meanwhile, queued by the broker
                collector = await asyncio.to_thread(start)
                await eventually(lambda: len(handled()) >= 61, timeout=60)
                await asyncio.sleep(1.0)  # anything handled twice would show up by now
                lines = handled()
                assert at_kill < 40
                assert sorted(line["seq"] for line in lines) == list(range(1, 62))
                assert len({line["id"] for line in lines}) == 61
                assert lines[-1]["state"] == "completed"
                await eventually(lambda: sender.deliveries.pending("t") == 0, timeout=30)
                assert sender.deliveries.summary("t") == {DeliveryState.DELIVERED: 61}
        finally:
            collector.kill()
            collector.communicate(timeout=10)


@pytest.mark.timeout_s(90)
async def test_sender_killed_mid_task_fails_the_task_with_a_reason_after_restart(tmp_path):
    with LocalMosquitto(CONFIG) as broker:
        settings = make_settings(broker.host, broker.port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTPUSH_")}
        env.update(
            MQTTPUSH_BROKER__PORT=str(broker.port),
            MQTTPUSH_TOPIC_PREFIX=settings.topic_prefix,
            MQTTPUSH_AGENT__STORE_PATH=str(tmp_path / "sender.db"),
            MQTTPUSH_DEMO__NOTIFICATION_COUNT="1000",
            MQTTPUSH_DEMO__NOTIFICATION_INTERVAL="0.05",
        )
        command = [sys.executable, "-m", "mqttpush", "serve", "sender"]
        sender = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            async with Fabric(settings) as fabric:
                collector = await fabric.serve(Collector(), "c@fame.fabric")
                remote = fabric.remote(SENDER)
                async with asyncio.timeout(20):
                    while True:  # bounded: until the sender process answers
                        try:
                            await remote.call("list_push_endpoints", {"task_id": "t"}, timeout=1)
                            break
                        except TimeoutError:
                            continue
                await remote.register_push_endpoint(
                    config={"task_id": "t", "address": "c@fame.fabric"}
                )
                await remote.run_task(task_id="t")
                await eventually(lambda: len(collector.got) >= 5)
                sender.kill()
                sender.communicate(timeout=10)
                sender = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
                status = TaskStatus.model_validate(
                    await remote.call("get_task_status", {"task_id": "t"}, timeout=20)
                )
                assert status.state is TaskState.FAILED
                assert status.error is not None
                assert status.error.type == "AgentRestarted"
                assert "its work was not resumed" in status.error.message
                await eventually(lambda: collector.got[-1].state is TaskState.FAILED)
                seqs = [n.seq for n in collector.got]
                assert seqs[:-1] == list(range(1, len(seqs)))
                # The final one continues past every number the sender may have used.
                assert seqs[-1] > seqs[-2]
        finally:
            sender.kill()
            sender.communicate(timeout=10)


async def test_duplicates_on_the_push_topic_are_handled_once(settings):
    async with Fabric(settings) as fabric:
        collector = await fabric.serve(Collector(), "c@fame.fabric")
        raw = MqttTransport(settings.broker)
        await raw.connect()
        topic = f"{fabric.topics.push_base(collector.address)}/t"
        notes = [PushNotification(task_id="t", seq=i, message=f"n{i}") for i in range(1, 6)]
        for note in notes:
            for _ in range(4):  # each one four times: a redelivery storm
                await raw.publish(Message(topic=topic, payload=note.model_dump_json().encode()))
        await raw.disconnect()
        await eventually(lambda: collector.stats.notifications_duplicate == 15)
        assert [n.id for n in collector.got] == [n.id for n in notes]
        assert collector.stats.notifications == 5


async def raw_replies(settings: Settings, requests: list[Message], count: int) -> list[dict]:
    """Publish raw requests whose Response Topic is ``{prefix}/raw/replies``; collect replies."""
    raw = MqttTransport(settings.broker)
    await raw.connect()
    await raw.subscribe(f"{settings.topic_prefix}/raw/replies")
    for request in requests:
        await raw.publish(request)
    replies: list[dict] = []
    async with asyncio.timeout(10):
        async for message in raw.messages():
            replies.append(json.loads(message.payload))
            if len(replies) == count:
                break
    await raw.disconnect()
    return replies


class Counter(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.runs = 0

    @operation
    async def bump(self) -> int:
        self.runs += 1
        return self.runs


async def test_a_repeated_request_is_answered_from_the_cache_not_run_twice(settings):
    async with Fabric(settings) as fabric:
        counter = await fabric.serve(Counter(), "counter@test.fabric")
        request = Message(
            topic=fabric.topics.rpc(counter.address),
            payload=b'{"jsonrpc": "2.0", "id": 1, "method": "bump"}',
            response_topic=f"{settings.topic_prefix}/raw/replies",
            correlation_data=b"same",
        )
        replies = await raw_replies(settings, [request] * 3, 3)
        assert replies == [{"jsonrpc": "2.0", "id": 1, "result": 1}] * 3
        assert counter.runs == 1
        assert counter.stats.requests_repeated == 2


class Slow(Collector):
    """Two handlers at a time, 4 ms each: ~500 notifications/s, slower than the sender."""

    def __init__(self) -> None:
        super().__init__()
        self._max_concurrency = 2

    async def on_message(self, notification: PushNotification) -> None:
        await asyncio.sleep(0.004)
        await super().on_message(notification)


@pytest.mark.timeout_s(90)
async def test_a_slow_receiver_holds_a_bounded_backlog_and_loses_nothing(settings: Settings):
    window = 50
    sender_settings = settings.model_copy(update={"agent": AgentSettings(delivery_window=window)})
    async with Fabric(sender_settings) as sender_fabric, Fabric(settings) as receiver_fabric:
        sender_agent = await sender_fabric.serve(PushSender(count=2000, interval=0), SENDER)
        slow = await receiver_fabric.serve(Slow(), "slow@fame.fabric")
        remote = sender_fabric.remote(SENDER)
        await remote.register_push_endpoint(config={"task_id": "s", "address": "slow@fame.fabric"})
        await remote.run_task(task_id="s")
        peak = 0
        started = time.monotonic()
        while len(slow.got) < 2001 and time.monotonic() - started < 60:  # bounded
            peak = max(peak, len(receiver_fabric._tasks))
            await asyncio.sleep(0.005)
        assert len(slow.got) == 2001
        assert len({n.id for n in slow.got}) == 2001
        # The receiver fell behind (the window filled up), yet the notifications waiting
        # in it never exceeded the sender's delivery window (plus the few tasks the
        # fabric always runs): the sender waited for receipts instead.
        assert window * 0.8 <= peak <= window + 5, peak
        await eventually(lambda: sender_agent.deliveries.outstanding("slow@fame.fabric") == 0)
        sender_done = TaskStatus.model_validate(await remote.get_task_status(task_id="s", wait=10))
        assert sender_done.state is TaskState.COMPLETED


@pytest.mark.timeout_s(60)
async def test_a_session_the_broker_lost_is_reported():
    with LocalMosquitto(CONFIG) as broker:
        settings = agent_settings(make_settings(broker.host, broker.port), "x@test.fabric")
        async with Fabric(settings) as fabric:
            await fabric.serve(Collector(), "x@test.fabric")
            broker.kill()  # before any save: the restarted broker does not know the session
            for path in (broker.data_dir).iterdir():
                path.unlink()
            broker.start()
            await eventually(lambda: fabric.reconnects >= 1, timeout=30)
            assert fabric.sessions_lost == 1


async def test_a_push_nobody_subscribes_to_is_visible_in_the_delivery_status(settings):
    agent = AgentSettings(receipt_timeout=0.2, delivery_attempts=2)
    settings = settings.model_copy(update={"agent": agent})
    async with Fabric(settings) as fabric:
        await fabric.serve(PushSender(count=2, interval=0), SENDER)
        remote = fabric.remote(SENDER)
        await remote.register_push_endpoint(config={"task_id": "n", "address": "nobody@nowhere"})
        await remote.run_task(task_id="n")

        async def expired() -> bool:
            status = await remote.get_delivery_status(task_id="n")
            return len(status) == 3 and all(d["state"] == "expired" for d in status)

        async with asyncio.timeout(10):
            while not await expired():
                await asyncio.sleep(0.1)
        deliveries = await remote.get_delivery_status(task_id="n")
        assert [d["seq"] for d in deliveries] == [1, 2, 3]
        assert all(d["endpoint"] == "nobody@nowhere" for d in deliveries)
        assert all(d["attempts"] == 2 for d in deliveries)
        assert all("no matching subscribers" in d["detail"] for d in deliveries)
        status = TaskStatus.model_validate(await remote.get_task_status(task_id="n"))
        assert status.deliveries == {DeliveryState.EXPIRED: 3}


async def test_registrations_for_tasks_that_never_run_are_bounded(settings):
    settings = settings.model_copy(update={"agent": AgentSettings(max_finished_tasks=5)})
    async with Fabric(settings) as fabric:
        sender = await fabric.serve(PushSender(count=0), SENDER)
        remote = fabric.remote(SENDER)
        for i in range(12):
            await remote.register_push_endpoint(config={"task_id": f"t{i}", "address": "a@b"})
        assert len(sender.endpoints) == 5
        assert await remote.list_push_endpoints(task_id="t11") != []
        assert await remote.list_push_endpoints(task_id="t0") == []


@pytest.mark.timeout_s(60)
async def test_two_copies_of_one_agent_do_not_fight_over_its_session(settings):
    copy = agent_settings(settings, "twin@test.fabric")
    async with Fabric(copy) as first:
        await first.serve(Collector(), "twin@test.fabric")
        # A second process with the same client id: connecting takes the session over.
        async with Fabric(copy) as second:
            waits = {asyncio.create_task(f.stopped.wait()) for f in (first, second)}
            try:
                async with asyncio.timeout(30):
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
            stopped = [f for f in (first, second) if f.stopped.is_set()]
            assert stopped, "neither copy noticed the other"
            reason = str(stopped[0].stopped_because)
            assert isinstance(stopped[0].stopped_because, SessionTakenOverError)
            assert "same client id" in reason or "took over" in reason


async def test_a_different_request_reusing_an_id_is_not_taken_for_a_repeat(settings):
    async with Fabric(settings) as fabric:
        counter = await fabric.serve(Counter(), "counter@test.fabric")
        requests = [
            Message(
                topic=fabric.topics.rpc(counter.address),
                payload=payload,
                response_topic=f"{settings.topic_prefix}/raw/replies",
            )
            for payload in (
                b'{"jsonrpc":"2.0","id":1,"method":"bump"}',
                b'{"jsonrpc":"2.0","id":1,"method":"nope"}',
            )
        ]
        replies = await raw_replies(settings, requests, 2)
        assert {"result" in r for r in replies} == {True, False}
        assert counter.stats.requests_repeated == 0


async def test_a_notification_whose_handler_failed_is_handled_again_when_redelivered(settings):
    async with Fabric(settings) as fabric:
        collector = await fabric.serve(Collector(fail_first=1), "c@fame.fabric")
        raw = MqttTransport(settings.broker)
        await raw.connect()
        note = PushNotification(task_id="t", seq=1, message="again")
        for _ in range(2):
            await raw.publish(
                Message(
                    topic=f"{fabric.topics.push_base(collector.address)}/t",
                    payload=note.model_dump_json().encode(),
                )
            )
        await raw.disconnect()
        await eventually(lambda: len(collector.got) == 1)
        assert collector.stats.handler_failures == 1
        assert collector.stats.notifications_duplicate == 0


@pytest.mark.timeout_s(60)
async def test_a_message_for_an_agent_no_longer_served_is_dropped_after_the_hold(settings):
    persistent = agent_settings(settings, "gone@test.fabric")
    async with Fabric(persistent) as fabric:
        agent = await fabric.serve(Counter(), "gone@test.fabric")
        rpc_topic = fabric.topics.rpc(agent.address)
    async with Fabric(settings) as other:  # while it is away, a request is queued for it
        await other.publish(Message(topic=rpc_topic, payload=b'{"jsonrpc":"2.0","method":"bump"}'))
    async with Fabric(persistent) as fabric:  # back, but serving nothing at that address
        await eventually(lambda: fabric.unrouted == 1, timeout=15)  # no other message needed
