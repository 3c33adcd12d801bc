"""The native transport's MQTT 5 codec: exact bytes, round trips, streaming, malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqttpush.errors import ProtocolError
from mqttpush.transport.base import Message
from mqttpush.transport.native.packets import (
    CONNACK,
    DISCONNECT,
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
    PacketReader,
    decode_connack,
    decode_disconnect,
    decode_puback,
    decode_publish,
    decode_suback,
    decode_varint,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_puback,
    encode_publish,
    encode_subscribe,
    encode_varint,
)
from mqttpush.transport.native.packets.properties import properties_end


def s(text: str) -> bytes:
    """An MQTT UTF-8 string: two-byte length, then the bytes."""
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def b(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def frame_one(data: bytes) -> tuple[int, bytes]:
    reader = PacketReader()
    ((first, body),) = reader.feed(data)
    assert reader.buffered == 0
    return first, bytes(body)


def round_trip(message: Message, packet_id: int = 0) -> Message:
    first, body = frame_one(encode_publish(message, packet_id))
    assert first >> 4 == PUBLISH
    return decode_publish(first, body, 12.5, 7)


FULL = Message(
    topic="a/b/ü",
    payload=b"\x00\x01 payload \xff",
    qos=1,
    content_type="application/json",
    correlation_data=b"\x00corr\xff",
    response_topic="replies/x",
    message_expiry=3600,
    user_properties=(("k", "v1"), ("z", ""), ("k", "v2"), ("é", "ß")),
)


# --- variable byte integers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
        (268_435_455, 4),
    ],
)
def test_variable_byte_integers_at_their_boundaries(value, size):
    data = encode_varint(value)
    assert len(data) == size
    assert all(byte & 0x80 for byte in data[:-1])
    assert not data[-1] & 0x80
    assert decode_varint(b"\xaa" + data + b"\xbb", 1) == (value, 1 + size)


@pytest.mark.parametrize("length", [0, 1, 127, 128, 150, 16_383, 16_384, 20_000])
def test_a_property_length_of_any_size_gives_where_the_properties_end(length):
    data = b"\xaa" + encode_varint(length) + b"\x00" * length
    start = 1 + len(encode_varint(length))
    assert properties_end(data, 1) == (start, start + length)


@pytest.mark.parametrize(
    "properties",
    [b"\x80", b"\x96\x01" + b"\x00" * 10, b"\x80\x80", b"\xff\xff\xff\xff\x01"],
)
def test_a_publish_whose_property_length_is_cut_short_or_too_long_is_refused(properties):
    with pytest.raises(ProtocolError):
        decode_publish(0x30, s("t") + properties, 0.0, 1)


def test_variable_byte_integer_known_encodings():
    assert encode_varint(128) == b"\x80\x01"
    assert encode_varint(16_384) == b"\x80\x80\x01"
    assert encode_varint(268_435_455) == b"\xff\xff\xff\x7f"


@pytest.mark.parametrize("value", [-1, 268_435_456, 2**40])
def test_variable_byte_integer_out_of_range_is_refused(value):
    with pytest.raises(ProtocolError):
        encode_varint(value)


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff\x01", b"\x80", b"\xff\xff", b""])
def test_malformed_variable_byte_integers(data):
    with pytest.raises(ProtocolError):
        decode_varint(data, 0)


# --- encoding -----------------------------------------------------------------------------


def test_connect_bytes_with_credentials_and_session_properties():
    data = encode_connect(
        "client-1",
        keepalive=30,
        clean_start=False,
        username="alice",
        password="s3cret",
        session_expiry=3600,
        receive_maximum=100,
    )
    props = b"\x11" + struct.pack(">I", 3600) + b"\x21" + struct.pack(">H", 100)
    body = (
        b"\x00\x04MQTT\x05"
        + bytes([0x80 | 0x40])  # user name, password; no clean start
        + struct.pack(">H", 30)
        + encode_varint(len(props))
        + props
        + s("client-1")
        + s("alice")
        + b(b"s3cret")
    )
    assert data == packet(0x10, body)


def test_connect_bytes_clean_start_without_credentials():
    data = encode_connect("c", keepalive=5, receive_maximum=1)
    assert data == packet(0x10, b"\x00\x04MQTT\x05\x02\x00\x05\x03\x21\x00\x01" + s("c"))


def test_connect_values_out_of_range_are_refused():
    with pytest.raises(ProtocolError):
        encode_connect("c", keepalive=70_000)
    with pytest.raises(ProtocolError):
        encode_connect("c", keepalive=5, receive_maximum=0)
    with pytest.raises(ProtocolError):
        encode_connect("c", keepalive=5, session_expiry=2**32)


def test_publish_with_every_property_round_trips():
    decoded = round_trip(FULL, packet_id=4242)
    assert decoded == FULL  # topic, payload, qos, retain and every property
    assert decoded.user_properties == FULL.user_properties  # in order, repeats kept
    assert (decoded.mid, decoded.generation, decoded.received_at) == (4242, 7, 12.5)


def test_publish_exact_bytes_qos0_retained_without_properties():
    data = encode_publish(Message("t/1", b"hi", qos=0, retain=True))
    assert data == b"\x31\x08" + s("t/1") + b"\x00hi"
    decoded = round_trip(Message("t/1", b"hi", qos=0, retain=True))
    assert (decoded.qos, decoded.retain, decoded.mid, decoded.payload) == (0, True, 0, b"hi")


def test_publish_exact_bytes_qos1_dup():
    data = encode_publish(Message("t", b"", qos=1), 258, dup=True)
    assert data == b"\x3a\x06" + s("t") + b"\x01\x02\x00"


def test_publish_of_a_large_payload_uses_a_four_byte_length():
    payload = bytes(range(256)) * 8192  # 2 MiB
    data = encode_publish(Message("big", payload, qos=1), 1)
    assert data[1] & 0x80
    assert data[2] & 0x80
    assert data[3] & 0x80
    assert not data[4] & 0x80
    assert round_trip(Message("big", payload, qos=1), 1).payload == payload


@pytest.mark.parametrize(
    "message",
    [
        Message("", b"x"),
        Message("a/+/b", b"x"),
        Message("a/#", b"x"),
        Message("nul\x00here", b"x"),
        Message("control\x01", b"x"),
        Message("del\x7f", b"x"),
        Message("nonchar\ufffe", b"x"),
        Message("surrogate\ud800", b"x"),
        Message("t" * 65_536, b"x"),
        Message("t", b"x", qos=2),
        Message("t", b"x", message_expiry=2**32),
        Message("t", b"x", message_expiry=-1),
        Message("t", b"x", content_type="a\x00b"),
        Message("t", b"x", response_topic="r" * 70_000),
        Message("t", b"x", correlation_data=b"c" * 65_536),
        Message("t", b"x", user_properties=(("k", "v" * 65_536),)),
        Message("t", b"x", user_properties=(("k\x00", "v"),)),
        Message("t", "not bytes"),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_unencodable_messages_are_protocol_errors(message):
    with pytest.raises(ProtocolError):
        encode_publish(message, 1)


def test_publish_needs_a_valid_packet_id_for_qos1():
    for bad in (0, 65_536):
        with pytest.raises(ProtocolError):
            encode_publish(Message("t", b"x", qos=1), bad)


def test_strings_at_the_length_limit_are_accepted():
    topic = "t" * 65_535
    assert round_trip(Message(topic, b"x", qos=1), 1).topic == topic


def test_puback_bytes_and_round_trip():
    assert encode_puback(5) == b"\x40\x02\x00\x05"
    assert encode_puback(0x0102, 0x10) == b"\x40\x04\x01\x02\x10\x00"
    first, body = frame_one(encode_puback(65_535))
    assert first >> 4 == PUBACK
    assert decode_puback(body) == (65_535, 0)
    first, body = frame_one(encode_puback(9, 0x87))
    assert decode_puback(body) == (9, 0x87)
    assert decode_puback(b"\x00\x09\x10") == (9, 0x10)  # reason, no property length
    props = b"\x1f" + s("oops!")  # Reason String
    assert decode_puback(b"\x00\x09\x80" + encode_varint(len(props)) + props) == (9, 0x80)


def test_subscribe_pingreq_disconnect_bytes():
    assert encode_subscribe(10, "a/+/c", 1) == b"\x82\x0b\x00\x0a\x00" + s("a/+/c") + b"\x01"
    assert encode_pingreq() == b"\xc0\x00"
    assert encode_disconnect() == b"\xe0\x00"
    assert encode_disconnect(0x04) == b"\xe0\x02\x04\x00"
    for bad_filter in ("", "x\x00", "f" * 65_536):
        with pytest.raises(ProtocolError):
            encode_subscribe(1, bad_filter)
    with pytest.raises(ProtocolError):
        encode_subscribe(1, "t", 3)


# --- decoding -----------------------------------------------------------------------------


def test_connack_defaults_without_properties():
    ack = decode_connack(b"\x01\x00\x00")
    assert ack.session_present
    assert ack.reason_code == 0
    assert ack.receive_maximum == 65_535
    assert ack.maximum_qos == 2
    assert ack.server_keep_alive is None
    assert decode_connack(b"\x00\x87").reason_code == 0x87  # no property length at all


def test_connack_properties_and_unused_ones_skipped():
    props = (
        b"\x21\x00\x0a"  # Receive Maximum 10
        + b"\x25\x01"  # Retain Available (byte, unused)
        + b"\x22\x00\x05"  # Topic Alias Maximum (two bytes, unused)
        + b"\x11\x00\x00\x0e\x10"  # Session Expiry Interval (four bytes, unused)
        + b"\x24\x01"  # Maximum QoS 1
        + b"\x26"
        + s("key")
        + s("value")  # User Property (pair, unused)
        + b"\x1a"
        + s("info")  # Response Information (string, unused)
        + b"\x16"
        + b(b"\x01\x02")  # Authentication Data (binary, unused)
        + b"\x1f"
        + s("why not")  # Reason String
        + b"\x12"
        + s("assigned-1")  # Assigned Client Identifier
        + b"\x13\x00\x3c"  # Server Keep Alive 60
        + b"\x27\x00\x10\x00\x00"  # Maximum Packet Size 1 MiB
    )
    ack = decode_connack(b"\x00\x86" + encode_varint(len(props)) + props)
    assert not ack.session_present
    assert ack.reason_code == 0x86
    assert ack.receive_maximum == 10
    assert ack.maximum_qos == 1
    assert ack.reason_string == "why not"
    assert ack.assigned_client_id == "assigned-1"
    assert ack.server_keep_alive == 60
    assert ack.maximum_packet_size == 1 << 20


def test_publish_skips_properties_it_does_not_use():
    props = (
        b"\x01\x01"  # Payload Format Indicator (byte)
        + b"\x0b\x80\x80\x01"  # Subscription Identifier 16384 (variable byte integer)
        + b"\x03"
        + s("text/plain")
        + b"\x0b\x05"  # a second Subscription Identifier
    )
    body = s("t/x") + b"\x00\x2a" + encode_varint(len(props)) + props + b"payload"
    message = decode_publish(0x32, body, 1.0, 3)
    assert message.topic == "t/x"
    assert message.mid == 42
    assert message.content_type == "text/plain"
    assert message.payload == b"payload"
    assert message.user_properties == ()


def test_suback_and_disconnect():
    assert decode_suback(b"\x00\x07\x00\x01").reason_codes == (1,)
    suback = decode_suback(b"\x00\x07\x05\x1f" + s("no") + b"\x87\x00")
    assert (suback.packet_id, suback.reason_codes) == (7, (0x87, 0))
    assert decode_disconnect(b"").reason_code == 0
    assert decode_disconnect(b"\x8e").reason_code == 0x8E
    props = b"\x11\x00\x00\x00\x00" + b"\x1f" + s("taken over") + b"\x1c" + s("other:1883")
    taken = decode_disconnect(b"\x8e" + encode_varint(len(props)) + props)
    assert (taken.reason_code, taken.reason_string) == (0x8E, "taken over")


@pytest.mark.parametrize(
    ("decode", "body"),
    [
        (decode_connack, b"\x00"),
        (decode_connack, b"\x02\x00\x00"),  # reserved flag bit
        (decode_connack, b"\x00\x00\x05\x21\x00"),  # property length past the end
        (decode_connack, b"\x00\x00\x03\x21\x00\x00"),  # Receive Maximum 0
        (decode_connack, b"\x00\x00\x02\x7f\x00"),  # unknown property identifier
        (decode_connack, b"\x00\x00\x03\x1f\x00\x05"),  # string past the end
        (decode_puback, b"\x00"),
        (decode_puback, b"\x00\x01\x00\x09"),  # properties past the end
        (decode_suback, b"\x00\x01\x00"),  # no reason code
        (decode_suback, b"\x00"),
        (decode_disconnect, b"\x00\x04\x1f\x00\x09x"),
        (decode_disconnect, b"\x00\x02\x7f\x00"),
    ],
)
def test_malformed_acks_are_protocol_errors(decode, body):
    with pytest.raises(ProtocolError):
        decode(body)


@pytest.mark.parametrize(
    ("first", "body"),
    [
        (0x30, b""),
        (0x30, b"\x00"),
        (0x30, b"\x00\x09abc\x00"),  # topic longer than the packet
        (0x30, s("t")),  # no property length
        (0x32, s("t") + b"\x00"),  # packet id cut short
        (0x36, s("t") + b"\x00\x01\x00"),  # QoS 3
        (0x30, s("") + b"\x00"),  # no topic (and aliases were never allowed)
        (0x30, b"\x00\x02\xc3\x28\x00"),  # invalid UTF-8
        (0x30, s("t") + b"\x05\x03\x00\x09ab"),  # property string past its properties
        (0x30, s("t") + b"\x02\x7f\x00"),  # unknown property identifier
        (0x30, s("t") + b"\x09\x02\x00\x00"),  # property length past the packet
        (0x30, s("t") + b"\x02\x26\x00"),  # user property cut short
    ],
)
def test_malformed_publishes_are_protocol_errors(first, body):
    with pytest.raises(ProtocolError):
        decode_publish(first, body, 0.0, 1)


# --- framing ------------------------------------------------------------------------------


def _stream() -> tuple[bytes, list[bytes]]:
    packets = [
        encode_publish(FULL, 1),
        b"\xd0\x00",  # PINGRESP
        encode_publish(Message("x" * 150, b"y" * 20_000, qos=1), 2),  # three-byte length
        b"\x40\x02\x00\x03",  # PUBACK
        encode_publish(Message("q", b"", qos=0), 0),
    ]
    return b"".join(packets), packets


def test_several_packets_in_one_chunk():
    data, packets = _stream()
    reader = PacketReader()
    framed = reader.feed(data)
    assert [bytes([first]) + encode_varint(len(body)) + bytes(body) for first, body in framed] == (
        packets
    )
    assert [first >> 4 for first, _ in framed] == [PUBLISH, PINGRESP, PUBLISH, PUBACK, PUBLISH]
    assert reader.buffered == 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000, 4096])
def test_packets_split_across_chunks(chunk):
    data, packets = _stream()
    reader = PacketReader()
    framed: list[tuple[int, bytes]] = []
    for start in range(0, len(data), chunk):
        framed.extend(
            (first, bytes(body)) for first, body in reader.feed(data[start : start + chunk])
        )
    assert [bytes([f]) + encode_varint(len(body)) + body for f, body in framed] == packets
    assert reader.buffered == 0
    first, body = framed[0]
    assert decode_publish(first, body, 0.0, 1) == FULL


def test_every_split_point_of_a_publish():
    data = encode_publish(Message("t/split", b"z" * 300, qos=1, user_properties=(("a", "b"),)), 9)
    for cut in range(len(data) + 1):
        reader = PacketReader()
        framed = [*reader.feed(data[:cut]), *reader.feed(data[cut:])]
        assert len(framed) == 1, cut
        first, body = framed[0]
        assert decode_publish(first, body, 0.0, 1).payload == b"z" * 300


def test_other_packet_kinds_are_framed():
    reader = PacketReader()
    connack = b"\x20\x03\x00\x00\x00"
    suback = b"\x90\x04\x00\x01\x00\x01"
    disconnect = b"\xe0\x01\x8e"
    framed = reader.feed(connack + suback + disconnect + b"\x40")
    assert [first >> 4 for first, _ in framed] == [CONNACK, SUBACK, DISCONNECT]
    assert reader.buffered == 1
    assert [(first, bytes(body)) for first, body in reader.feed(b"\x02\x00\x01")] == [
        (0x40, b"\x00\x01")
    ]


def test_a_remaining_length_over_four_bytes_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        PacketReader().feed(b"\x30\xff\xff\xff\xff\x01")
    reader = PacketReader()
    reader.feed(b"\x30\xff\xff")
    with pytest.raises(ProtocolError):
        reader.feed(b"\xff\xff\x01")


def test_feeding_a_bytearray_does_not_alias_it():
    data = bytearray(encode_publish(Message("t", b"abc", qos=0)))
    ((first, body),) = PacketReader().feed(data)  # type: ignore[arg-type]
    data[:] = b"\x00" * len(data)
    assert decode_publish(first, body, 0.0, 1).payload == b"abc"


_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Cn"), blacklist_characters="+#"),
    max_size=40,
)


_messages = st.builds(
    Message,
    topic=_text.filter(bool),
    payload=st.binary(max_size=300),
    qos=st.sampled_from([0, 1]),
    retain=st.booleans(),
    content_type=st.none() | _text,
    correlation_data=st.none() | st.binary(max_size=40),
    response_topic=st.none() | _text,
    message_expiry=st.none() | st.integers(0, 2**32 - 1),
    user_properties=st.lists(st.tuples(_text, _text), max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(message=_messages, packet_id=st.integers(1, 65_535), chunk=st.integers(1, 64))
def test_any_encodable_message_round_trips_through_the_stream(message, packet_id, chunk):
    data = encode_publish(message, packet_id) * 2
    reader = PacketReader()
    framed = []
    for start in range(0, len(data), chunk):
        framed.extend(reader.feed(data[start : start + chunk]))
    assert len(framed) == 2
    for first, body in framed:
        decoded = decode_publish(first, body, 0.0, 1)
        assert decoded == message
        assert decoded.mid == (packet_id if message.qos else 0)
