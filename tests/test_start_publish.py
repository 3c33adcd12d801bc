"""Publishes started without a task awaiting them (``start_publish``), on the native client.

The sender's notifications go out this way: queued in their lane behind earlier
publishes, sent when a PUBACK frees room, their outcome a future. Against the real
Mosquitto (more publishes than its Receive Maximum, in order) and a scripted broker
(held PUBACKs, a refusal, a dropped connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

import pytest

from mqttpush.errors import AccessDeniedError, ConnectionLostError, PacketRefusedError
from mqttpush.settings import BrokerSettings
from mqttpush.testing import FakeHost
from mqttpush.transport.base import Message
from mqttpush.transport.memory import MemoryBroker
from tests.scripted_broker import Reader as Inbox
from tests.scripted_broker import ScriptedBroker, connack, connected

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.transport.native import NativeTransport


@contextlib.asynccontextmanager
async def against(fake: ScriptedBroker) -> AsyncIterator[tuple[NativeTransport, Inbox]]:
    async with fake, connected(fake.settings()) as transport, Inbox(transport) as inbox:
        yield transport, inbox


async def test_more_publishes_than_the_receive_maximum_all_arrive_in_order(broker):
    topic = f"test/start/{uuid.uuid4().hex}"
    settings = BrokerSettings(host=broker.host, port=broker.port)
    async with connected(settings) as sub, connected(settings) as pub, Inbox(sub) as inbox:
        await sub.subscribe(topic, 1)
        started = [pub.start_publish(Message(topic, b"%d" % i, bulk=True)) for i in range(500)]
        assert all(future is not None for future in started)
        results = await asyncio.wait_for(asyncio.gather(*(f for f in started if f)), 20)
        assert results == [True] * 500
        await inbox.until(lambda: len(inbox.messages) == 500)
        assert inbox.payloads == [b"%d" % i for i in range(500)]
        # Nobody subscribed: the outcome says so, as publish() does.
        nobody = pub.start_publish(Message(f"{topic}/nobody", b"x"))
        assert nobody is not None
        assert await asyncio.wait_for(nobody, 5) is False


async def test_queued_publishes_wait_behind_earlier_ones_within_the_receive_maximum():
    fake = ScriptedBroker(connacks=[connack(props=b"\x21\x00\x03")], ack_publishes=False)
    async with against(fake) as (transport, _):
        started = [transport.start_publish(Message("t", b"%d" % i)) for i in range(10)]
        waited = asyncio.create_task(transport.publish(Message("t", b"10")))
        futures = [f for f in started if f is not None]
        assert len(futures) == 10
        for _ in range(100):  # bounded: 11 publishes in batches of at most 3
            if waited.done():
                break
            await asyncio.sleep(0.02)
            assert len(fake.unacked) <= 3
            fake.ack_all()
        assert await waited is True
        assert [f.result() for f in futures] == [True] * 10
        assert [p.body[-2:].lstrip(b"\x00") for p in fake.received if p.kind == 3] == [
            b"%d" % i for i in range(11)
        ]  # first come, first served, whichever way each was started
        assert fake.most_unacked == 3


async def test_a_refused_or_oversized_start_fails_its_future_and_keeps_the_connection():
    async with against(ScriptedBroker(puback_reason=0x87)) as (transport, _):
        refused = transport.start_publish(Message("t/1", b"x"))
        assert refused is not None
        with pytest.raises(AccessDeniedError, match="0x87"):
            await asyncio.wait_for(refused, 5)
    big = connack(props=b"\x27\x00\x00\x01\x00")  # Maximum Packet Size 256
    async with against(ScriptedBroker(connacks=[big])) as (transport, _):
        too_big = transport.start_publish(Message("t/1", b"x" * 300))
        assert too_big is not None
        with pytest.raises(PacketRefusedError, match="maximum packet size"):
            await asyncio.wait_for(too_big, 5)
        fine = transport.start_publish(Message("t/1", b"small"))
        assert fine is not None
        assert await asyncio.wait_for(fine, 5) is True
        assert transport.is_connected


async def test_a_dropped_connection_fails_queued_and_in_flight_starts():
    fake = ScriptedBroker(connacks=[connack(props=b"\x21\x00\x02")], ack_publishes=False)
    async with against(fake) as (transport, _):
        started = [transport.start_publish(Message("t", b"%d" % i)) for i in range(6)]
        futures = [f for f in started if f is not None]
        await fake.until(lambda: fake.publishes == 2)  # two in flight, four queued
        fake.hang_up()
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 5)
        assert all(isinstance(r, ConnectionLostError) for r in results)
        # Not connected: the caller is told to await publish() instead.
        for _ in range(100):  # bounded: until the drop is seen
            if transport.start_publish(Message("t", b"later")) is None:
                break
            await asyncio.sleep(0.02)
        assert transport.start_publish(Message("t", b"later")) is None


async def test_transports_without_it_say_so():
    assert FakeHost().start_publish(Message("t", b"x")) is None
    memory = MemoryBroker().transport("c1")
    assert memory.start_publish(Message("t", b"x")) is None
