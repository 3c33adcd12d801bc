"""What the hot path keeps between messages gives what reading afresh gives, checks included."""

from __future__ import annotations

from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel

from mqttpush import codec
from mqttpush.address import check_level
from mqttpush.errors import InvalidAddressError, PacketRefusedError, ProtocolError
from mqttpush.models import PushNotification, Receipt
from mqttpush.transport.base import Message
from mqttpush.transport.mqtt.convert import to_properties
from mqttpush.transport.native.packets import decode_publish, encode_publish

_PAIRS = (("mqttpush-sender", "s@d.fabric"), ("mqttpush-op", "push"), ("mqttpush-token", "t"))


def _publish(message: Message, packet_id: int = 7) -> tuple[int, memoryview]:
    packet = encode_publish(message, packet_id)
    return packet[0], memoryview(packet)[2:]  # these packets are under 128 bytes


def test_a_repeated_property_block_decodes_to_the_same_values_every_time() -> None:
    message = Message("a/b", b"{}", content_type="application/json", user_properties=_PAIRS)
    first, body = _publish(message)
    once = decode_publish(first, body, 0.0, 1)
    again = decode_publish(first, body, 0.0, 1)
    assert once.user_properties == again.user_properties == _PAIRS
    assert once.content_type == again.content_type == "application/json"
    assert again.payload == b"{}"
    assert again.mid == 7


def test_a_block_with_correlation_data_is_read_each_time() -> None:
    for n in range(3):
        message = Message("a/b", b"x", correlation_data=bytes([n]), user_properties=_PAIRS)
        decoded = decode_publish(*_publish(message), 0.0, 1)
        assert decoded.correlation_data == bytes([n])


def test_a_bad_property_block_is_refused_every_time_it_comes() -> None:
    good = Message("a/b", b"x", user_properties=(("k", "v"),))
    packet = bytearray(encode_publish(good, 1))
    packet[packet.index(b"v")] = 0  # the value becomes U+0000: malformed
    for _ in range(2):
        with pytest.raises(ProtocolError, match="U\\+0000"):
            decode_publish(packet[0], memoryview(bytes(packet))[2:], 0.0, 1)


def test_user_properties_encode_alike_whether_seen_before_or_not() -> None:
    message = Message("a/b", b"x", user_properties=(*_PAIRS, ("mqttpush-cid", "c1")))
    assert encode_publish(message, 1) == encode_publish(message, 1)
    listed = Message("a/b", b"x", user_properties=[["k", "v"]])  # type: ignore[arg-type]
    assert decode_publish(*_publish(listed), 0.0, 1).user_properties == (("k", "v"),)


def test_new_values_under_known_names_and_content_types_read_back_as_sent() -> None:
    for n in range(3):
        pairs = (("mqttpush-cid", f"c{n}"), ("mqttpush-trace", f"t{n}" * n))
        for content_type in ("application/json", f"text/plain; n={n}"):
            message = Message("a/b", b"x", content_type=content_type, user_properties=pairs)
            decoded = decode_publish(*_publish(message), 0.0, 1)
            assert decoded.user_properties == pairs
            assert decoded.content_type == content_type


def test_a_bad_user_property_name_or_content_type_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(PacketRefusedError, match="control character"):
            encode_publish(Message("a/b", b"x", user_properties=(("k\x01", "v"),)), 1)
        with pytest.raises(PacketRefusedError, match="control character"):
            encode_publish(Message("a/b", b"x", content_type="text\x01"), 1)


def test_a_bad_user_property_is_refused_every_time() -> None:
    message = Message("a/b", b"x", user_properties=(("k", "bad\x01"),))
    for _ in range(2):
        with pytest.raises(PacketRefusedError, match="control character"):
            encode_publish(message, 1)


def test_paho_gets_the_properties_it_would_have_packed_itself() -> None:
    message = Message(
        "a/b", b"x", content_type="application/json", correlation_data=b"\x01",
        response_topic="r/t", message_expiry=30, user_properties=(("a", "b"), ("c", "d")),
    )  # fmt: skip
    theirs: Any = Properties(PacketTypes.PUBLISH)
    theirs.ContentType = "application/json"
    theirs.ResponseTopic = "r/t"
    theirs.CorrelationData = b"\x01"
    theirs.MessageExpiryInterval = 30
    theirs.UserProperty = [("a", "b"), ("c", "d")]
    ours = to_properties(message)
    assert ours is not None
    read: Any = Properties(PacketTypes.PUBLISH)
    read.unpack(ours.pack())
    assert read.UserProperty == theirs.UserProperty
    assert (read.ContentType, read.ResponseTopic) == ("application/json", "r/t")
    assert (read.CorrelationData, read.MessageExpiryInterval) == (b"\x01", 30)
    assert len(ours.pack()) == len(theirs.pack())
    assert to_properties(Message("a/b", b"x")) is None


def test_the_envelope_of_repeated_properties_reads_the_first_value_each_time() -> None:
    pairs = (("mqttpush-sender", "first@d.f"), ("mqttpush-sender", "second@d.f"))
    for _ in range(2):
        assert codec.Envelope.of(Message("a", b"", user_properties=pairs)).sender == "first@d.f"
    plain = Message("a", b"", user_properties=_PAIRS)
    assert codec.Envelope.of(plain) == codec.Envelope("s@d.fabric", "push", token="t")
    assert codec.Envelope.of(plain) == codec.Envelope.of(plain)
    assert codec.Envelope.of(Message("a", b"")) == codec.Envelope()


def test_receipt_rows_make_the_bytes_receipt_models_make() -> None:
    note = PushNotification(task_id='t"é', seq=2, message="m")
    model = Receipt(id=note.id, task_id=note.task_id, seq=2, endpoint="e@d.f", handled=False)
    row = codec.receipt_of(note, "e@d.f", handled=False)
    envelope = codec.Envelope("e@d.f", "ack")
    for count in (1, 3):
        rows = codec.encode_receipt_rows("t", [row] * count, envelope)
        assert rows == codec.encode_receipts("t", [model] * count, envelope)
        assert codec.decode_receipts(rows.payload) == [model] * count


class _Progress(BaseModel):
    pct: int


def test_typed_data_is_validated_once_and_kept() -> None:
    note = PushNotification(task_id="t", seq=1, message="m", data={"pct": 3})
    assert note.typed is None
    typed = note.data_as(_Progress)
    assert typed.pct == 3
    assert note.data_as(_Progress) is typed is note.typed


def test_a_level_that_passed_still_passes_and_a_bad_one_still_fails() -> None:
    assert check_level("task-1", "task id") == "task-1"
    assert check_level("task-1", "task id") == "task-1"
    for _ in range(2):
        with pytest.raises(InvalidAddressError, match="not allowed"):
            check_level("a/b", "task id")
