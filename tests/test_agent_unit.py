"""Agents served by a fake host: requests, notifications, receipts and tasks with no broker."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

import pytest

from mqttpush import (
    Agent,
    BackgroundTaskAgent,
    PushNotification,
    RpcTimeoutError,
    TaskContext,
    TaskPushNotificationConfig,
    TaskState,
    operation,
)
from mqttpush.address import Address
from mqttpush.codec import Envelope, decode_receipts, encode_notification, encode_request
from mqttpush.errors import StoreUnavailableError, TaskNotFoundError, UsageError
from mqttpush.observe import Instruments, Tracing
from mqttpush.store import MemoryTaskStore
from mqttpush.testing import Collector, FakeHost, eventually

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from mqttpush.models import Receipt
    from mqttpush.store import StoredTask
    from mqttpush.transport.base import Message

ADDRESS = "unit@test.fabric"
SENDER = "sender@test.fabric"


class Greeter(Agent):
    @operation
    async def greet(self, name: str) -> str:
        return f"hello {name}"


class Counter(BackgroundTaskAgent):
    async def run_background_task(self, task: TaskContext) -> dict[str, int]:
        for i in range(3):
            await task.push(f"step {i + 1}")
        return {"steps": 3}


def request(host: FakeHost, method: str, params: dict[str, object]) -> Message:
    return encode_request(
        topic=host.topics.rpc(Address.parse(ADDRESS)),
        method=method,
        params=params,
        correlation_id="c1",
        reply_topic="test/fake/_reply/me/c1",
        timeout=5,
        envelope=Envelope(sender=SENDER),
    )


def push(host: FakeHost, notification: PushNotification, token: str | None = None) -> Message:
    topic = host.topics.push(Address.parse(ADDRESS), notification.task_id)
    return encode_notification(topic, notification, Envelope(SENDER, "push", token=token))


def receipts(host: FakeHost) -> list[Receipt]:
    return [r for m in host.published for r in decode_receipts(m.payload)]


async def test_a_request_is_answered_through_the_host():
    async with FakeHost() as host:
        agent = await host.serve(Greeter(), ADDRESS)
        await agent.handle_request(request(host, "greet", {"name": "ada"}))
        [reply] = host.published
        assert reply.topic == "test/fake/_reply/me/c1"
        assert reply.correlation_data == b"c1"
        assert json.loads(reply.payload) == {"jsonrpc": "2.0", "id": "c1", "result": "hello ada"}
        assert agent.stats.requests == 1


async def test_an_unknown_method_is_an_error_reply():
    async with FakeHost() as host:
        agent = await host.serve(Greeter(), ADDRESS)
        await agent.handle_request(request(host, "nope", {}))
        [reply] = host.published
        assert json.loads(reply.payload)["error"]["code"] == -32601
        assert agent.stats.request_errors == 1


async def test_a_notification_is_handled_once_and_each_copy_gets_a_receipt():
    async with FakeHost() as host:
        collector = await host.serve(Collector(), ADDRESS)
        notification = PushNotification(task_id="t", seq=1, message="hi")
        for _ in range(2):  # the second copy is a redelivery
            await collector.handle_push(push(host, notification), "t")
        await eventually(lambda: len(receipts(host)) == 2)  # they go out a moment later
        assert [n.message for n in collector.got] == ["hi"]
        assert collector.stats.notifications_duplicate == 1
        receipt_topic = host.topics.receipts(Address.parse(SENDER))
        assert {m.topic for m in host.published} == {receipt_topic}
        assert {r.id for r in receipts(host)} == {notification.id}


class Recording(Tracing):
    """Tracing that records the notifications it was asked to trace."""

    def __init__(self) -> None:
        self.processed: list[str] = []

    def process(
        self, message: Message, notification_id: str, agent: str
    ) -> AbstractContextManager[None]:
        del message
        self.processed.append(f"{agent} {notification_id}")
        return contextlib.nullcontext()


async def test_a_tracing_that_traces_notifications_is_entered_for_each_one_handled():
    async with FakeHost() as host:
        tracing = Recording()
        host.instruments = Instruments(tracing=tracing)
        collector = await host.serve(Collector(), ADDRESS)
        notification = PushNotification(task_id="t", seq=1, message="hi")
        for _ in range(2):  # the copy is not handled: not traced
            await collector.handle_push(push(host, notification), "t")
        assert tracing.processed == [f"{ADDRESS} {notification.id}"]


async def test_a_notification_with_a_wrong_token_is_rejected_without_a_receipt():
    async with FakeHost() as host:
        collector = await host.serve(Collector(), ADDRESS)
        collector.expect_push_token("t", "right")
        notification = PushNotification(task_id="t", seq=1, message="forged")
        await collector.handle_push(push(host, notification, token="wrong"), "t")
        assert collector.got == []
        assert collector.stats.notifications_rejected == 1
        assert host.published == []


async def test_a_background_task_pushes_to_its_endpoint_and_ends_completed():
    async with FakeHost() as host:
        agent = await host.serve(Counter(), SENDER)
        await agent.register_push_endpoint(TaskPushNotificationConfig(task_id="t", address=ADDRESS))
        started = await agent.run_task(task_id="t")
        assert started.state in (TaskState.SUBMITTED, TaskState.WORKING)
        status = await agent.get_task_status(task_id="t", wait=5)
        assert status.state is TaskState.COMPLETED
        assert status.result == {"steps": 3}
        topic = host.topics.push(Address.parse(ADDRESS), "t")

        def sent() -> list[dict[str, object]]:
            return [json.loads(m.payload) for m in host.published if m.topic == topic]

        await eventually(lambda: len(sent()) == 4)  # the final one follows the end
        notifications = sent()
        assert [n["message"] for n in notifications] == [
            "step 1",
            "step 2",
            "step 3",
            "Task completed",
        ]
        assert [n["seq"] for n in notifications] == [1, 2, 3, 4]


async def test_a_call_to_another_agent_carries_this_agents_address():
    async with FakeHost() as host:
        agent = await host.serve(Greeter(), ADDRESS)
        with pytest.raises(RpcTimeoutError):  # nobody answers a fake host's requests
            await agent.remote(SENDER, timeout=0.05).greet(name="bob")
        [sent] = host.published
        assert sent.topic == host.topics.rpc(Address.parse(SENDER))
        assert sent.user_property("mqttpush-sender") == ADDRESS


async def test_an_agent_not_served_says_so():
    with pytest.raises(UsageError, match="not served"):
        _ = Greeter().host


class FlakyStore(MemoryTaskStore):
    """Refuses the next ``failures`` task saves, like a database that is briefly down."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def save_task(self, task: StoredTask) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("database down")
        await super().save_task(task)


async def test_a_task_whose_first_save_fails_is_dropped_and_a_retry_runs_it():
    async with FakeHost() as host:
        store = FlakyStore(failures=1)
        agent = await host.serve(Counter(store=store), SENDER)
        with pytest.raises(StoreUnavailableError):
            await agent.run_task(task_id="t")
        assert agent.tasks.find("t") is None  # not left submitted with nothing running it
        with pytest.raises(TaskNotFoundError):
            await agent.get_task_status(task_id="t")
        await agent.run_task(task_id="t")  # the same id, once the store is back
        status = await agent.get_task_status(task_id="t", wait=5)
        assert status.state is TaskState.COMPLETED
        assert status.result == {"steps": 3}
        stored = await store.get_task("t")
        assert stored is not None
        assert stored.state is TaskState.COMPLETED
