"""Priorities without a broker: the inbound and outbound lanes, PUBACK order, the backlog.

The broker-backed side (a request answered ahead of thousands of queued notifications,
the final notification last) is in tests/test_overload.py.
"""

from __future__ import annotations

import asyncio

import pytest

from mqttpush.agent.backlog import Backlog
from mqttpush.routing import Lane, MessageLoop, Route
from mqttpush.transport.ackorder import AckOrder
from mqttpush.transport.base import Message
from mqttpush.transport.memory import MemoryBroker
from mqttpush.transport.native.flow import Flow

# --- PUBACK order -------------------------------------------------------------------------


def test_pubacks_wait_for_every_earlier_message():
    order = AckOrder()
    for packet_id in (7, 3, 9, 4):
        order.received(packet_id)
    assert order.handled(9) == []
    assert order.handled(3) == []
    assert order.handled(7) == [7, 3, 9]
    assert len(order) == 1
    assert order.handled(4) == [4]
    assert order.handled(4) == []  # once only
    assert order.handled(12) == []  # never received here
    assert len(order) == 0


# --- outbound lanes (native flow control) -------------------------------------------------


def _flow(receive_maximum: int) -> Flow:
    flow = Flow(asyncio.get_running_loop(), "test")
    flow.set_receive_maximum(receive_maximum)
    return flow


def _in_flight(flow: Flow, packet_id: int, *, bulk: bool) -> None:
    flow.pending[packet_id] = (flow.loop.create_future(), 0.0)
    if bulk:
        flow.bulk_ids.add(packet_id)


def _acked(flow: Flow, packet_id: int) -> None:
    flow.pending.pop(packet_id)
    flow.bulk_ids.discard(packet_id)
    flow.wake_room()


async def test_notifications_leave_a_tenth_of_the_window_to_control_traffic():
    flow = _flow(20)
    assert flow.bulk_limit == 18
    for packet_id in range(1, 19):
        assert not flow.room_taken(bulk=True)
        _in_flight(flow, packet_id, bulk=True)
    assert flow.room_taken(bulk=True)  # notifications: full
    assert not flow.room_taken()  # requests, replies, receipts: room left
    assert _flow(1).bulk_limit == 1  # a window of one is shared


async def test_waiting_control_messages_get_room_before_waiting_notifications():
    flow = _flow(4)  # bulk limit 3
    for packet_id in range(1, 5):
        _in_flight(flow, packet_id, bulk=packet_id < 4)
    got: list[str] = []
    next_id = iter(range(100, 200))

    async def publish(name: str, *, bulk: bool) -> None:
        await flow.wait_room(bulk=bulk)
        got.append(name)
        _in_flight(flow, next(next_id), bulk=bulk)  # takes the room, as a publish does

    tasks = [asyncio.create_task(publish(f"n{i}", bulk=True)) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(publish("reply", bulk=False)))
    await asyncio.sleep(0)
    _acked(flow, 1)  # a notification's PUBACK: the room goes to the reply
    await asyncio.sleep(0)
    assert got == ["reply"]
    _acked(flow, 4)
    await asyncio.sleep(0)
    assert got == ["reply", "n0"]  # the first notification waiting, first
    _acked(flow, 100)  # the reply's PUBACK: room, but 3 notifications are in flight
    await asyncio.sleep(0)
    assert got == ["reply", "n0"]  # the bulk limit holds
    _acked(flow, 2)
    _acked(flow, 3)
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert got == ["reply", "n0", "n1", "n2"]  # in the order they came


async def test_a_cancelled_waiter_hands_its_room_on():
    flow = _flow(2)
    _in_flight(flow, 1, bulk=False)
    _in_flight(flow, 2, bulk=False)
    first = asyncio.create_task(flow.wait_room())
    second = asyncio.create_task(flow.wait_room())
    await asyncio.sleep(0)
    _acked(flow, 1)  # room for the first
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # the second got it instead


# --- inbound lanes ------------------------------------------------------------------------


async def test_requests_already_read_are_handled_before_receipts_and_notifications():
    transport = MemoryBroker().transport("lanes")
    await transport.connect()
    handled: list[str] = []

    async def record(message: Message) -> None:
        handled.append(message.payload.decode())

    loop = MessageLoop(transport, lambda *_a, **_k: pytest.fail("nothing is spawned"))
    loop.router.add("rpc", Route(record))
    loop.router.add("ack", Route(record, lane=Lane.RECEIPTS))
    loop.router.add_children("push", Route(record, lane=Lane.NOTIFICATIONS))
    arrivals = [("push/t", "n1"), ("ack", "r1"), ("push/t", "n2"), ("rpc", "q1")]
    arrivals += [("ack", "r2"), ("push/t", "n3"), ("rpc", "q2")]
    for topic, payload in arrivals:
        transport.deliver(Message(topic, payload.encode()))

    async def pump() -> None:
        async for message in transport.messages():
            await loop.dispatch(message)

    reader = asyncio.create_task(pump())
    try:
        async with asyncio.timeout(5):
            while len(handled) < len(arrivals):
                await asyncio.sleep(0.01)
    finally:
        reader.cancel()
    assert handled == ["q1", "q2", "r1", "r2", "n1", "n2", "n3"]


async def test_a_notification_read_ahead_is_handled_when_the_last_message_read_is_held():
    # Before: a message held for a route (none yet) skipped the check, and the
    # notification read before it waited for the next message to arrive.
    transport = MemoryBroker().transport("held")
    await transport.connect()
    handled: list[str] = []

    async def record(message: Message) -> None:
        handled.append(message.payload.decode())

    loop = MessageLoop(transport, lambda *_a, **_k: pytest.fail("nothing is spawned"))
    loop.router.add_children("push", Route(record, lane=Lane.NOTIFICATIONS))
    transport.deliver(Message("push/t", b"n1"))
    transport.deliver(Message("nobody/yet", b"held"))

    async def pump() -> None:
        async for message in transport.messages():
            await loop.dispatch(message)

    reader = asyncio.create_task(pump())
    try:
        async with asyncio.timeout(5):
            while not handled:
                await asyncio.sleep(0.01)
    finally:
        reader.cancel()
    assert handled == ["n1"]
    assert loop.router.held()[0] == 1


# --- the publish backlog ------------------------------------------------------------------


async def test_the_backlog_bounds_publications_and_tells_when_a_task_drained():
    backlog = Backlog(2)
    await backlog.enter("a")
    await backlog.enter("b")
    third = asyncio.create_task(backlog.enter("a"))
    await asyncio.sleep(0)
    assert not third.done()  # two under way: the third push waits
    assert not await backlog.published("a", timeout=0.05)
    backlog.leave("a")
    await asyncio.wait_for(third, 1)
    drained = asyncio.create_task(backlog.published("a", timeout=5))
    await asyncio.sleep(0)
    assert not drained.done()
    backlog.leave("a")
    assert await asyncio.wait_for(drained, 1)
    assert backlog.under_way("b") == 1


async def test_a_push_takes_the_slots_of_all_its_endpoints_at_once():
    # Before: one slot per endpoint, taken one by one: eight pushes to two endpoints
    # each held one of eight slots and waited for a second, for ever.
    backlog = Backlog(3)
    await backlog.enter("wide", 5)  # more than the limit: goes, alone
    waiting = [asyncio.create_task(backlog.enter(f"t{i}", 2)) for i in range(3)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in waiting)
    backlog.leave("wide", 5)
    await asyncio.sleep(0)
    assert [task.done() for task in waiting] == [True, False, False]  # 2 of 3, in order
    backlog.leave("t0", 2)
    await asyncio.sleep(0)
    assert [task.done() for task in waiting] == [True, True, False]
    backlog.leave("t1", 2)
    await asyncio.wait_for(waiting[2], 1)
