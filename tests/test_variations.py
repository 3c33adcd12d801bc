"""Filters, priorities, rates and formats of push endpoints, on both brokers of the kit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

from mqttpush import (
    BackgroundTaskAgent,
    InvalidNotificationError,
    InvalidParamsError,
    Priority,
    PushFormat,
    TaskContext,
    TaskPushNotificationConfig,
    TaskState,
)
from mqttpush.address import Address
from mqttpush.codec import CLOUDEVENTS_CONTENT_TYPE, PRIORITY, Envelope, encode_receipts
from mqttpush.errors import ConnectionLostError
from mqttpush.models import DeliveryState, PushNotification, Receipt
from mqttpush.store.sqlite import SCHEMA_VERSION, SqliteTaskStore
from mqttpush.testing import Collector, eventually

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.transport.base import Message, Transport
    from tests.conftest import Kit

SENDER = "sender@fame.fabric"


class Scripted(BackgroundTaskAgent):
    """Pushes what its task params say: ``[[message, data, priority], ...]``."""

    async def run_background_task(self, task: TaskContext) -> int:
        for message, data, priority in task.params.get("pushes", []):
            await task.push(message, data, priority=priority)
        return len(task.params.get("pushes", []))


class Progress(BaseModel):
    step: int
    label: str


class Typed(BackgroundTaskAgent):
    notification_schema = Progress

    async def run_background_task(self, task: TaskContext) -> None:
        await task.push("typed", Progress(step=1, label="one"))
        await task.push("dict", {"step": 2, "label": "two"})
        with pytest.raises(InvalidNotificationError, match="does not match Progress"):
            await task.push("bad", {"step": "three"})
        with pytest.raises(InvalidNotificationError, match="unknown priority"):
            await task.push("bad priority", {"step": 4, "label": "x"}, priority="bogus")


class TypedCollector(Collector):
    notification_model = Progress


PUSHES = [
    ["a", {"kind": "x", "n": 1}, "low"],
    ["b", {"kind": "y", "n": 2}, "normal"],
    ["c", {"kind": "x", "n": 3}, "high"],
    ["d", {"kind": "x", "n": True}, "urgent"],
]


async def _run(sender: Any, task_id: str, pushes: list[list[Any]]) -> None:
    await sender.run_task(task_id=task_id, params={"pushes": pushes})
    await sender.get_task_status(task_id=task_id, wait=10)


async def test_filters_choose_what_each_endpoint_gets_and_seq_shows_the_gaps(kit: Kit):
    filters = {
        "all@t": None,
        "final@t": {"states": ["completed", "failed", "canceled"]},
        "high@t": {"min_priority": "high"},
        "x@t": {"data": {"kind": "x", "n": 1}},
        "true@t": {"data": {"n": True}},
    }
    async with kit.fabric() as fabric:
        agent = await fabric.serve(Scripted(), SENDER)
        collectors = {a: await fabric.serve(Collector(), a) for a in filters}
        sender = fabric.remote(SENDER)
        for address, spec in filters.items():
            config = {"task_id": "f", "address": address, "filter": spec}
            await sender.register_push_endpoint(config=config)
        listed = await sender.list_push_endpoints(task_id="f")
        assert [c["filter"] for c in listed] == [
            None if spec is None else {"states": None, "min_priority": None, "data": None} | spec
            for spec in filters.values()
        ]
        await _run(sender, "f", PUSHES)
        await eventually(lambda: len(collectors["all@t"].got) == 5)
        await eventually(lambda: agent.deliveries.pending("f") == 0)
        got = {a: [(n.seq, n.message) for n in c.got] for a, c in collectors.items()}
        assert got["all@t"] == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "Task completed")]
        assert got["final@t"] == [(5, "Task completed")]
        assert got["high@t"] == [(3, "c"), (4, "d"), (5, "Task completed")]  # final is high
        assert got["x@t"] == [(1, "a")]  # 1 == True in Python, not in the filter
        assert got["true@t"] == [(4, "d")]
        tracked = {(d.endpoint, d.seq) for d in agent.deliveries.status("f")}
        assert ("final@t", 1) not in tracked  # filtered out: not tracked either
        assert len(tracked) == 5 + 1 + 3 + 1 + 1


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"filter": {"states": ["done"]}}, "states"),
        ({"filter": {"min_priority": "critical"}}, "min_priority"),
        ({"filter": {"data": {"k": [1, 2]}}}, "data"),
        ({"filter": {"data": {}}}, "data"),
        ({"filter": {"colour": "red"}}, "colour"),
        ({"format": "xml"}, "format"),
        ({"rate": 0}, "rate"),
        ({"rate": 5000}, "rate"),
    ],
)
async def test_invalid_registrations_are_refused_with_the_reason(kit: Kit, config, where):
    async with kit.fabric() as fabric:
        await fabric.serve(Scripted(), SENDER)
        sender = fabric.remote(SENDER)
        with pytest.raises(InvalidParamsError) as caught:
            await sender.register_push_endpoint(config={"task_id": "t", "address": "a@b"} | config)
        assert caught.value.code == -32602
        assert any(where in error["loc"] for error in caught.value.data)
        assert await sender.list_push_endpoints(task_id="t") == []


@contextlib.asynccontextmanager
async def _subscribed(kit: Kit, address: str) -> AsyncIterator[tuple[Transport, list[Message]]]:
    """A raw client subscribed to ``address``'s notifications, sending no receipts."""
    raw = kit.transport()
    await raw.connect()
    domain, name = address.split("@")[1], address.split("@", maxsplit=1)[0]
    await raw.subscribe(f"{kit.settings.topic_prefix}/{domain}/{name}/push/+")
    got: list[Message] = []

    async def read() -> None:
        with contextlib.suppress(ConnectionLostError):
            async for message in raw.messages():
                got.append(message)
                await raw.ack(message)

    reader = asyncio.get_running_loop().create_task(read())
    try:
        yield raw, got
    finally:
        await raw.disconnect()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def test_under_a_full_window_an_urgent_notification_overtakes_queued_normal_ones(kit: Kit):
    # A window of 2, and nothing re-sent during the test.
    agent_settings = kit.settings.agent.model_copy(
        update={"delivery_window": 2, "receipt_timeout": 60}
    )
    settings = kit.settings.model_copy(update={"agent": agent_settings})
    async with kit.fabric_for(settings) as fabric:
        agent = await fabric.serve(Scripted(), SENDER)
        async with _subscribed(kit, "slow@t") as (raw, got):  # no receipts: the window fills
            sender = fabric.remote(SENDER)
            for task_id in ("w", "n1", "n2", "n3", "u"):
                config = {"task_id": task_id, "address": "slow@t"}
                await sender.register_push_endpoint(config=config)
            # "w" fills the window with two; its final notification (high) waits.
            await sender.run_task(task_id="w", params={"pushes": [["w", None, "normal"]] * 2})
            await eventually(lambda: len(got) == 2 and agent.deliveries.waiting("slow@t") == 1)
            for task_id in ("n1", "n2", "n3"):
                pushes = [[task_id, None, "normal"]]
                await sender.run_task(task_id=task_id, params={"pushes": pushes})
                waiting = 1 + int(task_id[1])
                await eventually(lambda: agent.deliveries.waiting("slow@t") == waiting)  # noqa: B023
            await sender.run_task(task_id="u", params={"pushes": [["u", None, "urgent"]]})
            await eventually(lambda: agent.deliveries.waiting("slow@t") == 5)
            ack = fabric.topics.receipts(Address.parse(SENDER))
            for count in range(3, 6):  # one receipt at a time: one slot at a time
                note = json.loads(got[count - 3].payload)
                receipt = Receipt(id=note["id"], task_id=note["task_id"], seq=note["seq"],
                                  endpoint="slow@t")  # fmt: skip
                await raw.publish(encode_receipts(ack, [receipt], Envelope("slow@t", "ack")))
                await eventually(lambda: len(got) == count)  # noqa: B023 - awaited here
            order = [
                (json.loads(m.payload)["task_id"], json.loads(m.payload)["message"],
                 m.user_property(PRIORITY))
                for m in got
            ]  # fmt: skip
            assert order == [
                ("w", "w", "normal"),
                ("w", "w", "normal"),
                ("u", "u", "urgent"),  # overtook the four queued before it
                ("w", "Task completed", "high"),  # finals are high: before the normal ones
                ("u", "Task completed", "high"),
            ]
            assert json.loads(got[2].payload)["priority"] == "urgent"


async def test_a_rate_spaces_an_endpoints_notifications(kit: Kit):
    async with kit.fabric() as fabric:
        await fabric.serve(Scripted(), SENDER)
        paced = await fabric.serve(Collector(), "paced@t")
        sender = fabric.remote(SENDER)
        config = {"task_id": "r", "address": "paced@t", "rate": 20}
        registered = await sender.register_push_endpoint(config=config)
        assert registered["rate"] == 20
        await _run(sender, "r", [["n", None, "normal"]] * 5)
        await eventually(lambda: len(paced.got) == 6)
        gaps = [
            (b.timestamp - a.timestamp).total_seconds()
            for a, b in zip(paced.got, paced.got[1:], strict=False)
        ]
        # The notification is stamped before it waits; the wait is what makes the gap:
        # once paced, each one waits its 1/20 s after the one before.
        assert sum(gaps) >= 4 * 0.05 * 0.9


async def test_a_schema_checks_pushes_and_the_receiver_gets_the_typed_object(kit: Kit):
    async with kit.fabric() as fabric:
        await fabric.serve(Typed(), SENDER)
        typed = await fabric.serve(TypedCollector(), "typed@t")
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(config={"task_id": "s", "address": "typed@t"})
        await sender.run_task(task_id="s")
        status = await sender.get_task_status(task_id="s", wait=10)
        assert status["state"] == "completed"  # the refused pushes raised in the task only
        await eventually(lambda: len(typed.got) == 3)
        assert [n.typed for n in typed.got] == [Progress(step=1, label="one"),
                                                 Progress(step=2, label="two"), None]  # fmt: skip
        assert typed.got[0].data_as(Progress) is typed.got[0].typed
        assert typed.stats.handler_failures == 0


async def test_data_not_matching_the_receivers_model_is_a_handler_failure(kit: Kit):
    async with kit.fabric() as fabric:
        agent = await fabric.serve(Scripted(), SENDER)
        typed = await fabric.serve(TypedCollector(), "typed@t")
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(config={"task_id": "m", "address": "typed@t"})
        await _run(sender, "m", [["wrong", {"step": "x"}, "normal"]])
        await eventually(lambda: len(typed.got) == 1 and agent.deliveries.pending("m") == 0)
        assert typed.stats.handler_failures == 1
        details = [d.detail for d in agent.deliveries.status("m")]
        assert details == ["the endpoint's handler failed", None]


async def test_cloudevents_endpoints_get_envelopes_with_the_same_receipts_and_dedup(kit: Kit):
    async with kit.fabric() as fabric:
        agent = await fabric.serve(Scripted(), SENDER)
        native = await fabric.serve(Collector(), "native@t")
        events = await fabric.serve(Collector(), "events@t")
        async with _subscribed(kit, "events@t") as (raw, seen):
            sender = fabric.remote(SENDER)
            await sender.register_push_endpoint(config={"task_id": "e", "address": "native@t"})
            config = {"task_id": "e", "address": "events@t", "format": "cloudevents"}
            assert (await sender.register_push_endpoint(config=config))["format"] == "cloudevents"
            await _run(sender, "e", PUSHES[:2])
            await eventually(lambda: len(events.got) == 3 and len(native.got) == 3)
            await eventually(lambda: agent.deliveries.pending("e") == 0)
            assert {d.state for d in agent.deliveries.status("e")} == {DeliveryState.DELIVERED}
            assert [n.id for n in events.got] == [n.id for n in native.got]
            assert [n.model_dump() for n in events.got] == [n.model_dump() for n in native.got]
            await eventually(lambda: len(seen) >= 3)
            event = json.loads(seen[0].payload)
            assert seen[0].content_type == CLOUDEVENTS_CONTENT_TYPE
            assert event["specversion"] == "1.0"
            assert event["id"] == events.got[0].id
            assert event["source"] == f"mqttpush:{SENDER}"
            assert event["subject"] == "e"
            assert event["data"]["message"] == "a"
            # The same event again is a duplicate, as a native copy would be.
            await raw.publish(seen[0])
            await eventually(lambda: events.stats.notifications_duplicate == 1)
            assert len(events.got) == 3


def test_filter_matching_rules():
    config = TaskPushNotificationConfig.model_validate(
        {"task_id": "t", "address": "a@b", "filter": {"states": ["working"], "data": {"k": 1.0}}}
    )
    assert config.format is PushFormat.MQTTPUSH
    assert config.filter is not None

    def note(**kw: Any) -> PushNotification:
        return PushNotification(task_id="t", seq=1, message="m", **kw)

    assert config.filter.matches(note(data={"k": 1}))  # 1 == 1.0, as in JSON
    assert not config.filter.matches(note(data={"k": 2}))
    assert not config.filter.matches(note(data=None))
    assert not config.filter.matches(note(data={"k": 1}, state=TaskState.COMPLETED))
    assert Priority.URGENT.rank > Priority.HIGH.rank > Priority.NORMAL.rank > Priority.LOW.rank


async def test_options_survive_a_restart_and_a_version_1_store_is_migrated(tmp_path):
    config = TaskPushNotificationConfig.model_validate({
        "task_id": "t", "address": "a@b", "token": "tok", "format": "cloudevents", "rate": 2.5,
        "filter": {"states": ["completed"], "min_priority": "high", "data": {"k": "v"}},
    })  # fmt: skip
    plain = TaskPushNotificationConfig(task_id="t", address="c@d")
    async with SqliteTaskStore(tmp_path / "s.db") as store:
        await store.save_endpoint(config)
        await store.save_endpoint(plain)
    async with SqliteTaskStore(tmp_path / "s.db") as store:
        assert await store.endpoints("t") == [config, plain]
    old = tmp_path / "v1.db"
    with contextlib.closing(sqlite3.connect(old)) as raw:
        raw.executescript(
            "CREATE TABLE tasks (task_id TEXT PRIMARY KEY, state TEXT NOT NULL, params TEXT"
            " NOT NULL, result TEXT NOT NULL, error TEXT, created_at TEXT NOT NULL, updated_at"
            " TEXT NOT NULL, pushed INTEGER NOT NULL);"
            "CREATE TABLE endpoints (task_id TEXT NOT NULL, address TEXT NOT NULL, token TEXT,"
            " PRIMARY KEY (task_id, address));"
            "CREATE TABLE deliveries (notification_id TEXT NOT NULL, endpoint TEXT NOT NULL,"
            " task_id TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL, attempts"
            " INTEGER NOT NULL, detail TEXT, updated_at TEXT NOT NULL,"
            " PRIMARY KEY (notification_id, endpoint));"
            "INSERT INTO endpoints VALUES ('t', 'c@d', NULL);"
            "PRAGMA user_version = 1;"
        )
    async with SqliteTaskStore(old) as store:
        assert await store.endpoints("t") == [plain]
        await store.save_endpoint(config)
        assert await store.endpoints("t") == [plain, config]
    with contextlib.closing(sqlite3.connect(old)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4


class Endless(BackgroundTaskAgent):
    async def run_background_task(self, task: TaskContext) -> None:
        await task.push("started")
        await asyncio.Event().wait()  # until the process goes away


async def test_filters_survive_a_restart_of_the_sender(kit: Kit, tmp_path):
    path = tmp_path / "sender.db"
    async with kit.fabric() as endpoints:
        failed = await endpoints.serve(Collector(), "failed@t")
        urgent = await endpoints.serve(Collector(), "urgent@t")
        async with kit.fabric() as first:
            agent = await first.serve(Endless(store=(store := SqliteTaskStore(path))), SENDER)
            sender = endpoints.remote(SENDER)
            for address, spec in (("failed@t", {"states": ["failed"]}),
                                  ("urgent@t", {"min_priority": "urgent"})):  # fmt: skip
                config = {"task_id": "r", "address": address, "filter": spec}
                await sender.register_push_endpoint(config=config)
            await sender.run_task(task_id="r")
            await eventually(lambda: agent.tasks.get("r").pushed == 1)  # "started"
            await asyncio.sleep(0.1)  # "started" was filtered out for both
        await store.close()
        async with kit.fabric() as second:  # the restart: the task is failed, finals sent
            await second.serve(Endless(store=(again := SqliteTaskStore(path))), SENDER)
            await eventually(lambda: len(failed.got) == 1)
            assert failed.got[0].state is TaskState.FAILED
            assert failed.got[0].seq > 1  # "started" took seq 1: the gap shows
            await asyncio.sleep(0.2)
            assert urgent.got == []  # the final notification is high, not urgent
        await again.close()
