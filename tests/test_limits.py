"""Bounds in bytes: every cache and queue, and the size of what the protocol carries.

The size limits are tested on the in-memory broker and on Mosquitto (``kit``); the
byte budgets of the caches and queues as units, with their owners alone.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from mqttpush import (
    Agent,
    BackgroundTaskAgent,
    BrokerRefusedError,
    Fabric,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    TaskContext,
    codec,
    operation,
)
from mqttpush.agent.delivery import DeliveryTracker
from mqttpush.agent.recent import RecentIds
from mqttpush.agent.tasks import TaskRegistry
from mqttpush.errors import ProtocolError
from mqttpush.models import PushNotification, Receipt, TaskState
from mqttpush.routing.router import Router
from mqttpush.rpc.cache import ResponseCache
from mqttpush.testing import FakeHost
from mqttpush.transport import Message

if TYPE_CHECKING:
    from mqttpush import Settings
    from tests.conftest import Kit

ADDRESS = "sizes@test.fabric"


class Sizes(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.measured: list[int] = []
        self.released = asyncio.Event()

    @operation
    async def measure(self, text: str) -> int:
        self.measured.append(len(text))
        return len(text)

    @operation
    async def repeat(self, times: int) -> str:
        return "x" * times

    @operation
    async def hold(self, text: str) -> int:
        await asyncio.wait_for(self.released.wait(), 10)
        return len(text)

    @operation
    async def release(self) -> bool:
        self.released.set()
        return True


def _limited(settings: Settings, max_request_bytes: int) -> Settings:
    rpc = settings.rpc.model_copy(update={"max_request_bytes": max_request_bytes})
    return settings.model_copy(update={"rpc": rpc})


async def _raw_call(kit: Kit, topic: str, payload: bytes) -> dict[str, Any]:
    reply_topic = f"{kit.settings.topic_prefix}/raw/replies"
    raw = kit.transport()
    await raw.connect()
    try:
        await raw.subscribe(reply_topic)
        await raw.publish(Message(topic, payload, qos=1, response_topic=reply_topic))
        async with asyncio.timeout(10):
            async for message in raw.messages():
                body: dict[str, Any] = json.loads(message.payload)
                return body
    finally:
        await raw.disconnect()
    raise AssertionError("no reply")


# --- requests, replies, params, tokens: documented limits, clear JSON-RPC errors ----------


async def test_a_request_over_the_size_limit_is_refused_unread_and_the_agent_goes_on(kit):
    settings = _limited(kit.settings, 4096)
    async with Fabric(settings, transport=kit.transport()) as fabric:
        agent = await fabric.serve(Sizes(), ADDRESS)
        big = {"jsonrpc": "2.0", "id": 5, "method": "measure", "params": {"text": "x" * 5000}}
        body = await _raw_call(kit, fabric.topics.rpc(agent.address), json.dumps(big).encode())
        assert body["id"] is None  # not parsed: its id is not known
        assert body["error"]["code"] == InvalidRequestError.code
        assert "over the limit of 4096 bytes" in body["error"]["data"]["detail"]
        assert agent.measured == []
        assert await fabric.remote(ADDRESS).measure(text="x" * 3000) == 3000


async def test_a_reply_over_the_size_limit_becomes_an_internal_error(kit):
    settings = _limited(kit.settings, 4096)
    async with Fabric(settings, transport=kit.transport()) as fabric:
        await fabric.serve(Sizes(), ADDRESS)
        with pytest.raises(InternalError) as refused:
            await fabric.remote(ADDRESS).repeat(times=5000)
        assert refused.value.data["type"] == "ReplyTooLarge"
        assert "over the limit of 4096 bytes" in refused.value.data["message"]
        assert await fabric.remote(ADDRESS).repeat(times=3000) == "x" * 3000


@pytest.mark.broker
async def test_mosquitto_refuses_a_message_over_its_message_size_limit(settings):
    # mosquitto.conf: message_size_limit 1048576, the agents' own request limit.
    from mqttpush.transport.native import NativeTransport  # noqa: PLC0415 - this test only

    raw = NativeTransport(settings.broker)
    await raw.connect()
    try:
        topic = f"{settings.topic_prefix}/big"
        assert await raw.publish(Message(topic, b"x" * (1 << 20), qos=1)) is False  # no one
        with pytest.raises(BrokerRefusedError) as refused:
            await raw.publish(Message(topic, b"x" * ((1 << 20) + 1), qos=1))
        assert refused.value.reason_code == 0x95  # packet too large
    finally:
        await raw.disconnect()


async def test_a_large_request_does_not_hold_up_a_small_one(kit):
    new_fabric, _ = kit
    async with new_fabric() as server, new_fabric() as client:
        agent = await server.serve(Sizes(), ADDRESS)
        remote = client.remote(ADDRESS)
        near_limit = "x" * ((1 << 20) - 200)  # with its envelope, just under 1 MiB
        big = asyncio.create_task(remote.hold(text=near_limit))
        await asyncio.sleep(0)  # the big one is published first
        # The big request's handler waits for the small one: if the big request held
        # the agent up (serially read, decoded, run), the small one would never run.
        assert await remote.release() is True
        assert await big == len(near_limit)
        assert agent.released.is_set()


class Tasks(BackgroundTaskAgent):
    async def run_background_task(self, ctx: TaskContext) -> Any:
        return None


async def test_run_task_params_over_the_limit_are_refused(kit):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Tasks(), ADDRESS)
        remote = fabric.remote(ADDRESS)
        with pytest.raises(InvalidParamsError) as refused:
            await remote.run_task(task_id="big", params={"blob": "x" * (64 << 10)})
        (problem,) = refused.value.data
        assert problem["loc"] == ["params"]
        assert "over the limit of 65536" in problem["msg"]
        assert agent.tasks.find("big") is None  # nothing started, nothing kept
        status = await remote.run_task(task_id="fits", params={"blob": "x" * 60_000})
        assert status["task_id"] == "fits"


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("t" * 1025, "over the limit of 1024"),
        ("é" * 513, "over the limit of 1024"),  # 1,026 bytes of UTF-8
        ("a\x01b", "control characters"),
        ("a\nb", "control characters"),
        ("a\ufffeb", "non-characters"),
    ],
)
async def test_tokens_a_notification_could_not_carry_are_refused_at_registration(kit, token, why):
    new_fabric, _ = kit
    async with new_fabric() as fabric:
        agent = await fabric.serve(Tasks(), ADDRESS)
        remote = fabric.remote(ADDRESS)
        config = {"task_id": "t1", "address": "r@test.fabric", "token": token}
        with pytest.raises(InvalidParamsError) as refused:
            await remote.register_push_endpoint(config=config)
        (problem,) = refused.value.data
        assert problem["loc"] == ["config", "token"]
        assert why in problem["msg"]
        assert agent.endpoints.of("t1") == []
        for n, fits in enumerate(("t" * 1024, "é" * 512)):
            fitting = {**config, "address": f"r{n}@test.fabric", "token": fits}
            assert (await remote.register_push_endpoint(config=fitting))["token"] == "********"


def test_notifications_over_the_size_limit_are_neither_sent_nor_read():
    big = PushNotification(task_id="t", seq=1, message="m", data={"blob": "x" * (256 << 10)})
    with pytest.raises(ProtocolError, match="over the limit of 262144 bytes"):
        codec.encode_notification("p/push/t", big, codec.Envelope())
    payload = big.model_dump_json().encode()
    with pytest.raises(ProtocolError, match="over the limit of 262144 bytes"):
        codec.decode_notification(payload)
    fits = PushNotification(task_id="t", seq=1, message="m", data={"blob": "x" * 200_000})
    message = codec.encode_notification("p/push/t", fits, codec.Envelope())
    assert codec.decode_notification(message.payload) == fits


async def test_an_agent_counts_an_oversized_notification_as_malformed():
    async with FakeHost() as host:
        agent = await host.serve(Agent(), ADDRESS)
        big = PushNotification(task_id="t", seq=1, message="m", data={"blob": "x" * (256 << 10)})
        message = Message("p/push/t", big.model_dump_json().encode(), qos=1)
        await agent.handle_push(message, "t")
        assert agent.stats.notifications_malformed == 1
        assert agent.stats.notifications_unknown_task == 0
        assert host.published == []  # no receipt


# --- byte budgets of the caches and queues ------------------------------------------------


async def test_the_response_cache_keeps_replies_within_its_byte_budget():
    cache = ResponseCache(1_000, max_bytes=10_000)
    keys = [(f"reply/{i}", b"c") for i in range(5)]
    for key in keys:
        future = cache.begin(key)
        cache.finish(key, future, Message(key[0], b"r" * 4_000))
    assert cache.bytes <= 10_000
    assert len(cache) == 2  # 785 MB for 100 large replies before: now the newest that fit
    assert cache.lookup(keys[0]) is None
    kept = cache.lookup(keys[-1])
    assert kept is not None
    assert kept.result() is not None
    assert kept.result().payload == b"r" * 4_000  # type: ignore[union-attr]


async def test_an_agent_answers_repeats_from_a_cache_bounded_in_bytes():
    settings = FakeHost().settings
    agent_settings = settings.agent.model_copy(update={"response_cache_bytes": 50_000})
    async with FakeHost(settings.model_copy(update={"agent": agent_settings})) as host:
        agent = await host.serve(Sizes(), ADDRESS)
        for i in range(20):
            body = {"jsonrpc": "2.0", "id": i, "method": "repeat", "params": {"times": 10_000}}
            request = Message(
                "p/rpc", json.dumps(body).encode(), response_topic="r", correlation_data=b"%d" % i
            )
            await agent.handle_request(request)
        cache = agent._responder._cache  # type: ignore[union-attr]
        assert cache.bytes <= 50_000
        assert 1 <= len(cache) <= 5
        assert len(host.published) == 20


def test_recent_ids_are_bounded_in_bytes_as_well_as_in_count():
    recent = RecentIds(10_000, max_bytes=1_000)
    for i in range(10):
        recent.add(f"{i}" + "x" * 199)  # 200 bytes each
    assert recent.bytes <= 1_000
    assert len(recent) == 5
    assert "0" + "x" * 199 not in recent
    assert "9" + "x" * 199 in recent


def test_recent_ids_forget_the_oldest_beyond_the_window_in_the_order_first_added():
    recent = RecentIds(3)
    for key in ("a", "b", "c", "a", "d"):  # "a" again keeps its place: oldest
        recent.add(key)
    assert len(recent) == 3
    assert "a" not in recent
    assert all(key in recent for key in ("b", "c", "d"))
    assert recent.bytes == 3


async def test_held_messages_are_bounded_in_bytes():
    expired: list[Message] = []
    router = Router(expired.append, hold_max_bytes=1_000)
    assert router.hold(Message("a/b", b"x" * 600))
    assert not router.hold(Message("a/c", b"x" * 600))  # would pass the budget: not held
    assert router.hold(Message("a/d", b"x" * 400))
    assert router.held_bytes == 1_000
    assert [m.topic for m in router.release()] == ["a/b", "a/d"]
    assert router.held_bytes == 0


async def test_a_sender_keeps_at_most_its_byte_window_of_notifications_per_endpoint():
    async with FakeHost() as host:
        tracker = DeliveryTracker(
            host, receipt_timeout=60, attempts=5, publish_window=5, window=100, window_bytes=1_000
        )
        notes = [PushNotification(task_id="t", seq=i, message="m" * 500) for i in (1, 2, 3)]
        messages = [codec.encode_notification("p/push/t", n, codec.Envelope()) for n in notes]
        await tracker.send(notes[0], {"r@x.y": messages[0]})
        third = asyncio.create_task(tracker.send(notes[1], {"r@x.y": messages[1]}))
        await asyncio.sleep(0.05)
        assert not third.done()  # 2 x ~600 bytes would pass the 1,000-byte window
        assert tracker.outstanding_bytes("r@x.y") == len(messages[0].payload)
        tracker.on_receipt(Receipt(id=notes[0].id, task_id="t", seq=1, endpoint="r@x.y"))
        await asyncio.wait_for(third, 5)
        assert tracker.outstanding_bytes("r@x.y") == len(messages[1].payload)
        # One notification larger than the whole window still goes, alone.
        tracker.on_receipt(Receipt(id=notes[1].id, task_id="t", seq=2, endpoint="r@x.y"))
        huge = PushNotification(task_id="t", seq=3, message="m" * 2_000)
        huge_message = codec.encode_notification("p/push/t", huge, codec.Envelope())
        await asyncio.wait_for(tracker.send(huge, {"r@x.y": huge_message}), 5)
        assert tracker.outstanding("r@x.y") == 1


async def test_finished_tasks_are_kept_within_a_byte_budget():
    registry = TaskRegistry(max_finished=100, max_finished_bytes=1_000)
    for i in range(5):
        runner, _ = registry.create(f"t{i}", {"p": "x" * 100})
        runner.transition(TaskState.WORKING)
        runner.transition(TaskState.COMPLETED, result="r" * 300)
    assert registry.finished_bytes <= 1_000
    assert registry.find("t0") is None  # the oldest went first
    assert registry.find("t4") is not None
    assert 1 < len(registry) < 5
