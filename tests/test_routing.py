"""The message loop: every message acknowledged once handled, whatever the handler does."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from mqttpush.routing import MessageLoop, Route, acknowledged
from mqttpush.testing import eventually
from mqttpush.transport.base import Message
from mqttpush.transport.memory import MemoryBroker, MemoryTransport

if TYPE_CHECKING:
    from collections.abc import Coroutine


class Recording(MemoryTransport):
    """An in-memory transport that records what is acknowledged, and when."""

    def __init__(self, broker: MemoryBroker, events: list[str]) -> None:
        super().__init__(broker, "recording")
        self.events = events

    async def ack(self, message: Message) -> None:
        self.events.append(f"ack {message.payload.decode()}")


def message(text: str, topic: str = "a/b") -> Message:
    return Message(topic=topic, payload=text.encode())


class Spawner:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def __call__(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        return task


async def test_a_message_is_acknowledged_after_its_handler_even_when_it_fails():
    events: list[str] = []
    transport = Recording(MemoryBroker(), events)
    loop = MessageLoop(transport, Spawner())

    async def handle(m: Message) -> None:
        events.append(f"handled {m.payload.decode()}")
        if m.payload == b"bad":
            raise RuntimeError("a bug")

    loop.router.add("a/b", Route(handle))
    await loop.dispatch(message("one"))
    await loop.dispatch(message("bad"))
    assert events == ["handled one", "ack one", "handled bad", "ack bad"]
    assert loop.failures == 1


async def test_concurrent_handlers_are_acknowledged_when_each_ends():
    events: list[str] = []
    transport = Recording(MemoryBroker(), events)
    loop = MessageLoop(transport, Spawner())
    release = asyncio.Event()

    async def slow(m: Message) -> None:
        await release.wait()
        events.append(f"handled {m.payload.decode()}")

    loop.router.add_children("push", Route(slow, concurrent=True))
    await loop.dispatch(message("n1", "push/t1"))
    await asyncio.sleep(0.01)
    assert events == []  # not handled yet: not acknowledged either
    release.set()
    await eventually(lambda: events == ["handled n1", "ack n1"])


async def test_a_waiting_concurrent_handler_does_not_hold_up_the_next_messages():
    events: list[str] = []
    transport = Recording(MemoryBroker(), events)
    spawner = Spawner()
    loop = MessageLoop(transport, spawner)
    release = asyncio.Event()

    async def handle(m: Message) -> None:
        if m.payload.startswith(b"slow"):
            await release.wait()
        events.append(f"handled {m.payload.decode()}")

    route = Route(handle, concurrent=True)
    loop.router.add_children("push", route)
    for text in ("quick1", "slow1", "slow2", "quick2", "quick3"):
        loop._queued.append((route, message(text, "push/t")))  # read together
    await loop.dispatch(message("quick4", "push/t"))
    await eventually(lambda: events.count("ack quick4") == 1)
    assert events == [
        "handled quick1", "ack quick1", "handled quick2", "ack quick2", "handled quick3",
        "ack quick3", "handled quick4", "ack quick4",
    ]  # fmt: skip
    assert len(spawner.tasks) == 3  # one more per handler that waits
    release.set()
    await eventually(lambda: len(events) == 12)
    assert set(events[8:]) == {"handled slow1", "ack slow1", "handled slow2", "ack slow2"}


async def test_concurrent_handlers_that_do_not_wait_share_one_task():
    events: list[str] = []
    transport = Recording(MemoryBroker(), events)
    spawner = Spawner()
    loop = MessageLoop(transport, spawner)

    async def handle(m: Message) -> None:
        events.append(f"handled {m.payload.decode()}")

    loop.router.add_children("push", Route(handle, concurrent=True))
    for i in range(10):
        await loop._run(loop.router.find("push/t"), message(f"n{i}", "push/t"))
    await eventually(lambda: len(events) == 20)
    assert events[:4] == ["handled n0", "ack n0", "handled n1", "ack n1"]
    assert len(spawner.tasks) == 1


async def test_a_message_without_a_route_waits_then_is_dropped_and_acknowledged():
    events: list[str] = []
    transport = Recording(MemoryBroker(), events)
    loop = MessageLoop(transport, Spawner(), hold_seconds=0.05)
    await loop.dispatch(message("early", "x/y"))
    assert events == []  # held, unacknowledged
    await eventually(lambda: events == ["ack early"], timeout=2)
    assert loop.unrouted == 1


async def test_a_held_message_is_handled_once_its_route_is_added():
    events: list[str] = []
    transport = Recording(MemoryBroker(), events)
    spawner = Spawner()
    loop = MessageLoop(transport, spawner)

    async def handle(m: Message) -> None:
        events.append(f"handled {m.payload.decode()}")

    await loop.dispatch(message("queued", "x/y"))
    loop.router.add("x/y", Route(handle))
    loop.replay()
    await eventually(lambda: events == ["handled queued", "ack queued"])
    assert loop.unrouted == 0


@pytest.mark.parametrize("leave", ["break", "raise"])
async def test_acknowledged_acknowledges_what_the_loop_body_read(leave):
    events: list[str] = []
    broker = MemoryBroker()
    transport = Recording(broker, events)
    await transport.connect()
    await transport.subscribe("t")
    for text in ("1", "2", "3"):
        await transport.publish(message(text, "t"))
    with contextlib.suppress(ValueError):
        async with contextlib.aclosing(acknowledged(transport)) as messages:
            async for m in messages:
                events.append(f"read {m.payload.decode()}")
                if m.payload == b"2":
                    if leave == "raise":
                        raise ValueError(leave)
                    break
    assert events == ["read 1", "ack 1", "read 2", "ack 2"]
