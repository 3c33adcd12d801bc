"""The native client held to MQTT 5 to the letter, against a scripted broker.

Outgoing packets are checked against the broker's limits before they are sent;
received packets MQTT 5 forbids end the connection with the DISCONNECT reason code the
specification asks for; the client's own Maximum Packet Size is announced and enforced.
"""

from __future__ import annotations

import pytest

from mqttpush.errors import ConnectionLostError, PacketRefusedError
from mqttpush.transport.base import Message
from mqttpush.transport.native import NativeTransport
from tests.scripted_broker import (
    DISCONNECT,
    PUBLISH,
    SUBSCRIBE,
    Reader,
    ScriptedBroker,
    client,
    connack,
    disconnect_codes,
    publish,
    string,
)

# --- 6. outgoing packets checked against the broker's limits -----------------------------


async def test_packets_over_the_brokers_maximum_packet_size_are_refused_before_sending():
    limit = b"\x27\x00\x00\x00\x80"  # Maximum Packet Size: 128 bytes
    broker = ScriptedBroker(connacks=[connack(props=limit)])
    async with broker, client(broker) as transport:
        with pytest.raises(PacketRefusedError, match="maximum packet size of 128"):
            await transport.subscribe("t/" + "x" * 200, 1)
        with pytest.raises(PacketRefusedError, match="maximum packet size of 128"):
            await transport.publish(Message("t/big", b"x" * 200))
        assert SUBSCRIBE not in broker.kinds
        assert PUBLISH not in broker.kinds
        assert await transport.publish(Message("t/small", b"x")) is True  # still connected


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "a/b+", "+a/b", "#/", "$share//t", "$share/g"])
async def test_misplaced_wildcards_are_refused_before_sending(bad):
    broker = ScriptedBroker()
    async with broker, client(broker) as transport:
        with pytest.raises(PacketRefusedError):
            await transport.subscribe(bad, 1)
        assert SUBSCRIBE not in broker.kinds
        await transport.subscribe("a/+/b/#", 1)  # a good one goes through


async def test_wildcards_a_broker_does_not_support_are_refused_before_sending():
    broker = ScriptedBroker(connacks=[connack(props=b"\x28\x00")])
    async with broker, client(broker) as transport:
        with pytest.raises(PacketRefusedError, match="no wildcards"):
            await transport.subscribe("a/+", 1)
        await transport.subscribe("a/b", 1)


# --- 7. strict decoding, with the DISCONNECT reason code the spec asks for ---------------


@pytest.mark.parametrize(
    ("packet", "code", "said"),
    [
        (publish(b"t/nul\x00"), 0x81, "U+0000"),
        (publish("t/+"), 0x82, "wildcard"),
        (publish("t/#"), 0x82, "wildcard"),
        (publish("t/a", props=b"\x23\x00\x01"), 0x94, "Topic Alias"),
        (publish("", props=b"\x23\x00\x01"), 0x94, "Topic Alias"),
        (publish(""), 0x82, "without a topic name"),
        (publish("t/a", props=b"\x03" + string("a") + b"\x03" + string("b")), 0x82, "twice"),
        (publish("t/a", props=b"\x26" + string("k\x00") + string("v")), 0x81, "U+0000"),
        (publish("t/a", qos=1, packet_id=0), 0x82, "packet id 0"),
        (publish("t/a", first=0x38), 0x81, "DUP"),
        (publish("t/a", first=0x36), 0x81, "QoS 3"),
        (b"\x41\x02\x00\x01", 0x81, "reserved flags"),
        (b"\xd1\x00", 0x81, "reserved flags"),
        (b"\xd0\x00", 0x82, "PINGRESP without a PINGREQ"),
        (b"\x20\x03\x00\x00\x00", 0x82, "unexpected packet type 2"),
    ],
)
async def test_what_mqtt5_forbids_ends_the_connection_with_the_right_reason(packet, code, said):
    broker = ScriptedBroker()
    async with broker, client(broker) as transport, Reader(transport) as reader:
        broker.send(packet)
        lost = await reader.until_lost()
        assert said in str(lost)
        assert f"reason code {code:#04x}" in str(lost)
        await broker.until(lambda: DISCONNECT in broker.kinds)
        assert disconnect_codes(broker) == [code]
        assert reader.messages == []  # nothing of it was delivered


async def test_a_publish_before_the_connack_is_a_protocol_error():
    broker = ScriptedBroker(connacks=[publish("t/early") + connack()])
    async with broker:
        transport = NativeTransport(broker.settings(connect_timeout=2))
        with pytest.raises(ConnectionLostError.__mro__[1]):  # BrokerUnavailableError
            await transport.connect()
        await broker.until(lambda: DISCONNECT in broker.kinds)
        assert disconnect_codes(broker) == [0x82]


# --- 8. Maximum Packet Size, advertised and enforced -----------------------------------


async def test_the_maximum_packet_size_is_advertised_in_connect():
    broker = ScriptedBroker()
    async with broker, client(broker, maximum_packet_size=4096):
        (connect_packet,) = broker.of_kind(1)
        assert b"\x27\x00\x00\x10\x00" in connect_packet.body  # property 0x27 = 4,096
    broker = ScriptedBroker()
    async with broker, client(broker):
        (connect_packet,) = broker.of_kind(1)
        assert b"\x27\x00\x20\x00\x00" in connect_packet.body  # the default, 2 MiB


async def test_a_larger_packet_is_refused_from_its_header_before_it_is_buffered():
    # Before: a 64 MiB PUBLISH was buffered whole (128 MiB of peak memory).
    broker = ScriptedBroker()
    async with broker, client(broker, maximum_packet_size=4096) as transport:
        link = transport._link
        assert link is not None
        async with Reader(transport) as reader:
            broker.send(b"\x30\x80\x80\x80\x20")  # the fixed header of a 64 MiB PUBLISH
            lost = await reader.until_lost()
        assert "0x95 (packet too large)" in str(lost)
        assert link._reader.buffered == 0  # nothing of it was kept
        await broker.until(lambda: DISCONNECT in broker.kinds)
        assert disconnect_codes(broker) == [0x95]
