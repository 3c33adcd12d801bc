"""Slots: a bounded number of holders, waiters served in order, cancellation passes a slot on."""

from __future__ import annotations

import asyncio

from mqttpush import Agent, PushNotification
from mqttpush.address import Address
from mqttpush.agent.slots import Slots
from mqttpush.codec import Envelope, encode_notification
from mqttpush.testing import FakeHost, eventually


async def test_a_free_slot_is_taken_at_once_and_given_back():
    slots = Slots(2)
    await slots.take()
    await slots.take()
    assert slots.free == 0
    slots.give()
    slots.give()
    assert slots.free == 2


async def test_waiters_get_the_slots_given_back_in_the_order_they_came():
    slots = Slots(1)
    await slots.take()
    order: list[int] = []

    async def wait(n: int) -> None:
        await slots.take()
        order.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert order == []
    for _ in range(3):
        slots.give()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    assert slots.free == 0  # each slot went straight to a waiter


async def test_a_slot_given_back_is_not_taken_by_a_newcomer_before_a_waiter():
    slots = Slots(1)
    await slots.take()
    waiter = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give()
    newcomer = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    assert waiter.done()
    assert not newcomer.done()
    slots.give()
    await newcomer


async def test_a_cancelled_waiter_takes_no_slot():
    slots = Slots(1)
    await slots.take()
    gone = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    slots.give()
    assert slots.free == 1


async def test_a_waiter_cancelled_after_it_was_given_a_slot_passes_it_on():
    slots = Slots(1)
    await slots.take()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give()  # to ``first``, which is cancelled before it runs again
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)
    slots.give()
    assert slots.free == 1


class Gate(Agent):
    """Holds every notification until ``gate`` opens, counting how many it holds at once."""

    def __init__(self) -> None:
        super().__init__(max_concurrency=2)
        self.gate = asyncio.Event()
        self.inside = 0
        self.most = 0
        self.handled = 0

    async def on_message(self, notification: PushNotification) -> None:
        del notification
        self.inside += 1
        self.most = max(self.most, self.inside)
        await self.gate.wait()
        self.inside -= 1
        self.handled += 1


async def test_an_agent_handles_at_most_max_concurrency_notifications_at_once():
    async with FakeHost() as host:
        agent = await host.serve(Gate(), "gate@test.fabric")
        topic = host.topics.push_base(Address.parse("gate@test.fabric")) + "/t"
        envelope = Envelope(sender="sender@test.fabric")
        messages = [
            encode_notification(topic, PushNotification(task_id="t", seq=n, message="m"), envelope)
            for n in range(1, 6)
        ]
        handlers = [asyncio.create_task(agent.handle_push(m, "t")) for m in messages]
        await eventually(lambda: agent.inside == 2)
        await asyncio.sleep(0.05)
        assert agent.inside == 2
        agent.gate.set()
        await asyncio.gather(*handlers)
        assert agent.handled == 5
        assert agent.most == 2
