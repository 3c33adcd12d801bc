"""What two copies of a pool share on Mosquitto and PostgreSQL: repeated requests, endpoints.

Each copy is a fabric of its own (its own client id, its own connection pool to the one
database), serving the same agent address with ``agent.pool``; a request is sent to one
chosen copy on that copy's own topic (``{rpc topic}/{client_id}``), as the broker would
hand a caller's retry to whichever copy it picks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from mqttpush import Address, Fabric, TaskPushNotificationConfig, TaskState, codec
from mqttpush.rpc.operation import operation
from mqttpush.settings import AgentSettings
from mqttpush.store.postgres import migrate
from mqttpush.testing import Collector, eventually
from mqttpush.tools.demo import PushSender
from mqttpush.transport import Message
from mqttpush.transport.mqtt import MqttTransport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.settings import Settings

SENDER = "sender@fame.fabric"


class Counting(PushSender):
    """A sender whose ``bump`` takes a while and counts its runs (per copy)."""

    def __init__(self) -> None:
        super().__init__(count=30, interval=0.1)
        self.runs = 0

    @operation
    async def bump(self) -> int:
        self.runs += 1
        await asyncio.sleep(1.0)  # a repeat reaching the other copy meanwhile waits
        return 7


def _pool_settings(settings: Settings, url: str) -> Settings:
    agent = AgentSettings(pool="senders", store_url=url, lease_ttl=5.0)
    return settings.model_copy(update={"agent": agent})


@contextlib.asynccontextmanager
async def _two_copies(settings: Settings, url: str) -> AsyncIterator[list[tuple[Fabric, Counting]]]:
    await migrate(url)
    pool = _pool_settings(settings, url)
    async with Fabric(pool) as one, Fabric(pool) as two:
        copies = [
            (one, await one.serve(Counting(), SENDER)),
            (two, await two.serve(Counting(), SENDER)),
        ]
        yield copies


def _own_topic(fabric: Fabric) -> str:
    return f"{fabric.topics.rpc(Address.parse(SENDER))}/{fabric.client_id}"


async def _send_raw(
    settings: Settings, requests: list[tuple[float, Message]], count: int
) -> list[Any]:
    """Publish each request after its delay (from the start); collect ``count`` replies."""
    raw = MqttTransport(settings.broker)
    await raw.connect()
    try:
        await raw.subscribe(f"{settings.topic_prefix}/raw/replies")
        loop = asyncio.get_running_loop()
        started = loop.time()
        for delay, request in requests:
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            await raw.publish(request)
        replies: list[Any] = []
        async with asyncio.timeout(20):
            async for message in raw.messages():
                replies.append(json.loads(message.payload))
                if len(replies) == count:
                    break
        return replies
    finally:
        await raw.disconnect()


def _request(settings: Settings, topic: str, body: dict[str, Any], correlation: bytes) -> Message:
    return Message(
        topic=topic,
        payload=json.dumps(body).encode(),
        response_topic=f"{settings.topic_prefix}/raw/replies",
        correlation_data=correlation,
    )


@pytest.mark.timeout_s(120)
async def test_one_correlation_id_sent_to_two_copies_runs_once(settings, postgres_url):
    async with _two_copies(settings, postgres_url) as copies:
        (one, first), (two, second) = copies
        body = {"jsonrpc": "2.0", "id": 1, "method": "bump"}
        replies = await _send_raw(
            settings,
            [
                (0.0, _request(settings, _own_topic(one), body, b"same")),
                (0.3, _request(settings, _own_topic(two), body, b"same")),  # while it runs
            ],
            2,
        )
        assert replies == [{"jsonrpc": "2.0", "id": 1, "result": 7}] * 2
        later = await _send_raw(  # once it ran: from the store, on the other copy
            settings, [(0.0, _request(settings, _own_topic(two), body, b"same"))], 1
        )
        assert later == replies[:1]
        assert first.runs + second.runs == 1
        assert first.stats.requests_repeated + second.stats.requests_repeated == 2
        other = await _send_raw(  # another correlation id is another request
            settings, [(0.0, _request(settings, _own_topic(two), body, b"other"))], 1
        )
        assert other == replies[:1]
        assert first.runs + second.runs == 2


@pytest.mark.timeout_s(120)
async def test_a_run_task_repeated_on_another_copy_makes_one_task(settings, postgres_url):
    async with _two_copies(settings, postgres_url) as copies:
        (one, _), (two, _) = copies
        body = {"jsonrpc": "2.0", "id": 5, "method": "run_task", "params": {"params": {"count": 1}}}
        replies = await _send_raw(
            settings,
            [
                (0.0, _request(settings, _own_topic(one), body, b"run-1")),
                (0.0, _request(settings, _own_topic(two), body, b"run-1")),  # at once
                (0.5, _request(settings, _own_topic(two), body, b"run-1")),  # after
                (0.5, _request(settings, _own_topic(one), body, b"run-1")),
            ],
            4,
        )
        task_ids = {reply["result"]["task_id"] for reply in replies}
        assert len(task_ids) == 1, replies
        task_id = task_ids.pop()
        with psycopg.connect(postgres_url) as conn:
            assert conn.execute("SELECT task_id FROM mqttpush_tasks").fetchall() == [(task_id,)]
        read = {"jsonrpc": "2.0", "id": 6, "method": "get_task_status",
                "params": {"task_id": task_id}}  # fmt: skip
        await _send_raw(settings, [(0.0, _request(settings, _own_topic(two), read, b"r"))], 1)
        with psycopg.connect(postgres_url) as conn:  # one claim: the run_task; reads are not
            assert conn.execute("SELECT count(*) FROM mqttpush_replies").fetchall() == [(1,)]


@pytest.mark.timeout_s(120)
async def test_an_endpoint_registered_with_another_copy_reaches_the_running_copy(
    settings, postgres_url
):
    async with _two_copies(settings, postgres_url) as copies, Fabric(settings) as client:
        (one, owner), (two, _) = copies
        early = await client.serve(Collector(), "early@test.fabric")
        late = await client.serve(Collector(), "late@test.fabric")

        async def call(fabric: Fabric, method: str, params: dict[str, Any]) -> Any:
            return await client.caller.call(
                _own_topic(fabric), method, params, timeout=10,
                envelope=codec.Envelope(sender="client@test.fabric"), address=SENDER,
            )  # fmt: skip

        config = TaskPushNotificationConfig(task_id="late", address=str(early.address))
        await call(one, "register_push_endpoint", {"config": config})
        await call(one, "run_task", {"task_id": "late"})  # 30 notifications, 0.1 s apart
        await eventually(lambda: len(early.got) >= 2)
        assert owner.tasks.find("late") is not None  # it runs on the first copy
        config = TaskPushNotificationConfig(task_id="late", address=str(late.address))
        await call(two, "register_push_endpoint", {"config": config})  # the other copy
        await eventually(lambda: any(n.state is TaskState.COMPLETED for n in late.got), 20)
        assert [n.state for n in late.got][-1] is TaskState.COMPLETED
        assert any(n.state is TaskState.WORKING for n in late.got)  # before the end, too
        assert [n.seq for n in early.got] == list(range(1, 32))  # the first one lost nothing
