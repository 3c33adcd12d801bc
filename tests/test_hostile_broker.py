"""The native client against a scripted misbehaving broker: every hard edge of issue 11.

Each test names the defect it guards. The broker is tests/scripted_broker.py; it speaks
raw MQTT 5 on 127.0.0.1 and records what the client sends back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from mqttpush.errors import ConnectionLostError
from mqttpush.transport.base import Message
from mqttpush.transport.native import NativeTransport
from mqttpush.transport.native.packets import decode_publish
from tests.scripted_broker import (
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBLISH,
    Reader,
    ScriptedBroker,
    client,
    connack,
    disconnect_codes,
    publish,
)

ONE_SECOND_KEEPALIVE = b"\x13\x00\x01"  # CONNACK property Server Keep Alive: 1 s


# --- 1. a dead broker is noticed while publishing; a run of PUBACK timeouts ------------


@pytest.mark.timeout_s(20)
async def test_a_silent_broker_is_noticed_while_the_client_keeps_publishing():
    # Before: PINGREQ went out only after a quiet period of writing, so a client that
    # publishes every 0.1 s never asked and stayed "connected" to a dead broker.
    broker = ScriptedBroker(connacks=[connack(props=ONE_SECOND_KEEPALIVE)], answer_pings=False)
    async with broker, client(broker) as transport, Reader(transport) as reader:
        started = time.monotonic()
        lost = None
        for _ in range(60):  # bounded: 6 s of one publish every 0.1 s
            try:
                await transport.publish(Message("t/beat", b"x", qos=0))
            except ConnectionLostError:
                break
            await asyncio.sleep(0.1)
        lost = await reader.until_lost(5)
        assert "no PINGRESP" in str(lost)
        assert PINGREQ in broker.kinds
        assert time.monotonic() - started < 4  # ~1.5 keep alives, not never


@pytest.mark.timeout_s(20)
async def test_a_run_of_puback_timeouts_ends_the_connection():
    broker = ScriptedBroker(ack_publishes=False)
    async with (
        broker,
        client(broker, connect_timeout=0.2) as transport,
        Reader(transport) as reader,
    ):
        results = await asyncio.gather(
            *(transport.publish(Message("t/slow", b"%d" % i)) for i in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, ConnectionLostError) for r in results)
        lost = await reader.until_lost()
        assert "no acknowledgement for 3 publishes in a row" in str(lost)


# --- 2. inbound bounds ------------------------------------------------------------------


async def test_more_unacknowledged_qos1_than_receive_maximum_is_disconnect_0x93_when_strict():
    broker = ScriptedBroker()
    strict = {"receive_maximum": 5, "strict_receive_maximum": True}
    async with broker, client(broker, **strict) as transport:
        async with Reader(transport, ack=False) as reader:
            for packet_id in range(1, 7):
                broker.send(publish("t/in", qos=1, packet_id=packet_id))
            lost = await reader.until_lost()
        assert "0x93 (receive maximum exceeded)" in str(lost)
        await broker.until(lambda: DISCONNECT in broker.kinds)
        assert disconnect_codes(broker) == [0x93]


async def test_pubacks_leave_in_the_order_the_publishes_came():
    # MQTT 5 [MQTT-4.6.0-2]: handled out of order, acknowledged in order.
    broker = ScriptedBroker()
    async with broker, client(broker) as transport, Reader(transport, ack=False) as reader:
        for packet_id in range(1, 5):
            broker.send(publish("t/in", qos=1, packet_id=packet_id))
        await reader.until(lambda: len(reader.messages) == 4)
        first, second, third, fourth = reader.messages
        await transport.ack(third)
        await transport.ack(second)
        await asyncio.sleep(0.1)
        assert broker.of_kind(PUBACK) == []  # the first one is not handled yet
        await transport.ack(first)
        await broker.until(lambda: len(broker.of_kind(PUBACK)) == 3)
        await transport.ack(fourth)
        await broker.until(lambda: len(broker.of_kind(PUBACK)) == 4)
        acked = [int.from_bytes(p.body[:2], "big") for p in broker.of_kind(PUBACK)]
        assert acked == [1, 2, 3, 4]


async def test_by_default_an_overrun_of_receive_maximum_is_read_and_logged_once(caplog):
    broker = ScriptedBroker()
    async with broker, client(broker, receive_maximum=5) as transport:
        async with Reader(transport, ack=False) as reader:
            for packet_id in range(1, 13):
                broker.send(publish("t/in", qos=1, packet_id=packet_id))
            async with asyncio.timeout(5):
                while len(reader.messages) < 12:
                    await asyncio.sleep(0.02)
            assert reader.error is None
        assert DISCONNECT not in broker.kinds
    overruns = [r for r in caplog.records if "over this client's Receive Maximum" in r.message]
    assert len(overruns) == 1, [r.message for r in overruns]


async def test_a_resumed_sessions_backlog_over_receive_maximum_is_read_not_refused():
    # Mosquitto 2.0.11 sends a resumed session's whole backlog at once; a DISCONNECT
    # would repeat at every reconnect and the agent would never come back.
    broker = ScriptedBroker(connacks=[connack(session_present=True)])
    durable = {
        "client_id": "backlog",
        "session_expiry": 60,
        "receive_maximum": 5,
        "strict_receive_maximum": True,  # even strict: a resumed backlog is read
    }
    async with broker, client(broker, **durable) as transport:
        async with Reader(transport, ack=False) as reader:
            for packet_id in range(1, 21):
                broker.send(publish("t/backlog", qos=1, packet_id=packet_id))
            async with asyncio.timeout(5):
                while len(reader.messages) < 20:
                    await asyncio.sleep(0.02)
            assert reader.error is None
        assert DISCONNECT not in broker.kinds


async def test_acknowledged_messages_free_room_under_receive_maximum():
    broker = ScriptedBroker()
    async with broker, client(broker, receive_maximum=5) as transport, Reader(transport) as reader:
        for packet_id in range(1, 41):
            broker.send(publish("t/in", qos=1, packet_id=packet_id))
            await asyncio.sleep(0.005 if packet_id % 5 == 0 else 0)
        async with asyncio.timeout(10):
            while len(reader.messages) < 40:
                await asyncio.sleep(0.02)
        assert reader.error is None


@pytest.mark.timeout_s(30)
async def test_a_qos0_flood_stops_the_client_reading_until_its_inbox_drains():
    # Before: every message went into an unbounded deque (1.4 M messages, +387 MiB).
    broker = ScriptedBroker()
    count, bound = 5_000, 50
    async with broker, client(broker, inbox_max_messages=bound) as transport:
        link = transport._link
        assert link is not None
        payload = b"f" * 1_000
        for _ in range(count):
            broker.send(publish("t/flood", payload))
        for _ in range(100):  # bounded: until the client stopped reading
            if link.reading_paused:
                break
            await asyncio.sleep(0.02)
        assert link.reading_paused
        await asyncio.sleep(0.2)  # nothing more is read meanwhile
        assert len(link.inbox) <= bound + 300  # the bound, plus one socket read at most
        assert broker.writers[-1].transport.get_write_buffer_size() > 0  # held back by TCP
        got = 0
        received = transport.messages()
        async with asyncio.timeout(20):
            while got < count:
                message = await anext(received)
                got += 1
                assert len(link.inbox) <= bound + 300
        assert message.payload == payload
        await received.aclose()  # type: ignore[attr-defined]  # a generator underneath


@pytest.mark.timeout_s(30)
async def test_a_byte_bound_on_the_inbox_holds_too():
    broker = ScriptedBroker()
    async with broker, client(broker, inbox_max_bytes=100_000) as transport:
        link = transport._link
        assert link is not None
        for _ in range(100):
            broker.send(publish("t/big", b"b" * 50_000))
        for _ in range(100):
            if link.reading_paused:
                break
            await asyncio.sleep(0.02)
        assert link.reading_paused
        assert link.inbox_bytes <= 100_000 + 300_000  # the bound, plus one socket read
        received = transport.messages()
        async with asyncio.timeout(20):
            for _ in range(100):
                await anext(received)
        await received.aclose()  # type: ignore[attr-defined]  # a generator underneath


@pytest.mark.timeout_s(20)
async def test_a_client_that_stopped_reading_is_not_taken_for_a_dead_link():
    broker = ScriptedBroker(connacks=[connack(props=ONE_SECOND_KEEPALIVE)])
    async with broker, client(broker, inbox_max_messages=5) as transport:
        link = transport._link
        assert link is not None
        for _ in range(20):
            broker.send(publish("t/held", b"h" * 100_000))
        await asyncio.sleep(3.0)  # three keep alives without reading a byte
        assert link.reading_paused
        assert link.lost is None
        assert PINGREQ in broker.kinds  # it still tells the broker it is alive
        received = transport.messages()
        async with asyncio.timeout(10):
            for _ in range(20):
                await anext(received)
        await received.aclose()  # type: ignore[attr-defined]  # a generator underneath
        assert link.lost is None


# --- 4. one deadline per publish; unsolicited PINGRESP ---------------------------------


@pytest.mark.timeout_s(30)
async def test_a_publish_into_a_stalled_socket_fails_at_its_deadline():
    # Before: the drain had no deadline (9.2 s against a 6 s timeout, 40 s and more).
    broker = ScriptedBroker()
    async with broker, client(broker, connect_timeout=0.5) as transport:
        broker.reading.clear()  # the broker answers nothing and reads nothing
        body = b"s" * (1 << 20)
        blocked_for = None
        for _ in range(64):  # bounded: loopback buffers hold a few MiB
            started = time.monotonic()
            try:
                await transport.publish(Message("t/stall", body, qos=0))
            except ConnectionLostError:
                blocked_for = time.monotonic() - started
                break
            await asyncio.sleep(0.01)  # the write leaves at the end of this iteration
        assert blocked_for is not None, "the socket never filled"
        assert blocked_for < 1.0 + 1.0  # the deadline (twice the connect timeout), and slack


async def test_an_unsolicited_pingresp_is_a_protocol_error():
    broker = ScriptedBroker()
    async with broker, client(broker) as transport, Reader(transport) as reader:
        broker.send(b"\xd0\x00")
        lost = await reader.until_lost()
        assert "PINGRESP without a PINGREQ" in str(lost)
        await broker.until(lambda: DISCONNECT in broker.kinds)
        assert disconnect_codes(broker) == [0x82]


# --- 5. resend unacknowledged QoS 1 publishes with DUP when the session resumes ----------


async def test_unacknowledged_publishes_are_sent_again_with_dup_when_the_session_resumes():
    broker = ScriptedBroker(
        connacks=[connack(), connack(session_present=True)], ack_publishes=False
    )
    async with broker:
        transport = NativeTransport(broker.settings(client_id="keeper", session_expiry=60))
        await transport.connect()
        pending = asyncio.create_task(transport.publish(Message("t/keep", b"once")))
        await broker.until(lambda: PUBLISH in broker.kinds)
        broker.hang_up()
        with pytest.raises(ConnectionLostError):
            await pending
        broker.ack_publishes = True
        await transport.connect()
        assert transport.session_present
        await broker.until(lambda: len(broker.of_kind(PUBLISH)) == 2)
        first, again = broker.of_kind(PUBLISH)
        assert first.first & 0x08 == 0
        assert again.first & 0x08  # DUP
        assert again.body == first.body  # same topic, packet id, properties and payload
        assert again.connection == 2
        await asyncio.sleep(0.05)  # the PUBACK frees it
        assert transport._session.unacked == {}
        await transport.disconnect()


async def test_a_session_the_broker_forgot_is_not_resent():
    broker = ScriptedBroker(connacks=[connack(), connack(session_present=False)])
    broker.ack_publishes = False
    async with broker:
        transport = NativeTransport(broker.settings(client_id="keeper", session_expiry=60))
        await transport.connect()
        pending = asyncio.create_task(transport.publish(Message("t/keep", b"once")))
        await broker.until(lambda: PUBLISH in broker.kinds)
        broker.hang_up()
        with pytest.raises(ConnectionLostError):
            await pending
        await transport.connect()
        await asyncio.sleep(0.1)
        assert len(broker.of_kind(PUBLISH)) == 1
        assert transport._session.unacked == {}
        await transport.disconnect()


async def test_publishes_waiting_for_receive_maximum_leave_in_the_order_they_came():
    # A publish that arrived while others waited for room used to take the room a
    # PUBACK had just given a waiter: a task's final notification could overtake its
    # earlier ones (seen as notifications "lost" at the end of a benchmark run).
    broker = ScriptedBroker(connacks=[connack(props=b"\x21\x00\x02")])  # Receive Maximum 2
    async with broker, client(broker) as transport:
        sent: list[asyncio.Task[bool]] = []
        for n in range(200):
            message = Message("t/order", str(n).encode(), qos=1)
            sent.append(asyncio.create_task(transport.publish(message)))
            if n % 7 == 0:
                await asyncio.sleep(0)  # let PUBACKs in while publishes keep coming
        assert all(await asyncio.gather(*sent))
        order = [
            int(decode_publish(p.first, p.body, 0.0, 0).payload) for p in broker.of_kind(PUBLISH)
        ]
        assert order == list(range(200))
