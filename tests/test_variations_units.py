"""Units of the variations: the CloudEvents codec, the Will in CONNECT, filter bounds, windows."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from mqttpush import codec
from mqttpush.address import Topics
from mqttpush.agent import fanout
from mqttpush.agent.window import Pacer, Windows
from mqttpush.errors import ProtocolError
from mqttpush.models import (
    NotificationFilter,
    Priority,
    PushNotification,
    TaskPushNotificationConfig,
)
from mqttpush.transport.base import Message
from mqttpush.transport.native.packets import encode_connect


def _event(**changes: object) -> bytes:
    note = PushNotification(task_id="t", seq=2, message="m", priority=Priority.URGENT)
    message = codec.encode_notification(
        "p/push/t", note, codec.Envelope("s@d", "push"), cloudevents_source="s@d"
    )
    return json.dumps(json.loads(message.payload) | changes).encode()


def test_a_cloudevent_decodes_to_its_notification_and_a_native_payload_still_does():
    note = PushNotification(task_id="t", seq=2, message="m", priority=Priority.URGENT)
    message = codec.encode_notification(
        "p/push/t", note, codec.Envelope("s@d", "push", priority="urgent"),
        cloudevents_source="s@d",
    )  # fmt: skip
    assert message.content_type == codec.CLOUDEVENTS_CONTENT_TYPE
    assert message.user_property(codec.PRIORITY) == "urgent"
    assert codec.decode_notification(message.payload, message.content_type) == note
    native = codec.encode_notification("p/push/t", note, codec.Envelope("s@d", "push"))
    assert codec.decode_notification(native.payload, native.content_type) == note
    # From other clients: a Content Type with parameters, or none at all.
    charset = f"{codec.CLOUDEVENTS_CONTENT_TYPE}; charset=utf-8"
    assert codec.decode_notification(message.payload, charset) == note
    assert codec.decode_notification(message.payload, None) == note
    with pytest.raises(ProtocolError, match="not its notification's id"):
        codec.decode_notification(_event(id="other"), codec.CLOUDEVENTS_CONTENT_TYPE)
    with pytest.raises(ProtocolError, match="malformed CloudEvent"):
        codec.decode_notification(_event(specversion="0.3"), codec.CLOUDEVENTS_CONTENT_TYPE)
    with pytest.raises(ProtocolError, match="malformed CloudEvent data"):
        codec.decode_notification(_event(data={"x": 1}), codec.CLOUDEVENTS_CONTENT_TYPE)


def test_connect_carries_the_will_with_its_flags_properties_topic_and_payload():
    will = Message("a/card", b'{"status":"offline"}', qos=1, retain=True,
                   content_type="application/json",
                   user_properties=(("mqttpush-status", "offline"),))  # fmt: skip
    plain = encode_connect("c", keepalive=30)
    packet = encode_connect("c", keepalive=30, will=will)
    flags = packet[2 + 7]  # fixed header (2 bytes here), then protocol name and level
    assert flags & 0x04  # Will flag
    assert (flags >> 3) & 0x03 == 1  # Will QoS 1
    assert flags & 0x20  # Will retain
    assert not plain[2 + 7] & 0x04
    assert packet.endswith(b"\x00\x06a/card\x00\x14" + will.payload)
    assert b"\x26\x00\x0fmqttpush-status\x00\x07offline" in packet
    with pytest.raises(ProtocolError, match="Will"):
        encode_connect("c", keepalive=30, will=Message("a/#", b"x"))


@pytest.mark.parametrize(
    "spec",
    [
        {"data": {"k": "x" * 1025}},
        {"data": {"": 1}},
        {"data": {f"k{i}": i for i in range(17)}},
        {"states": []},
        {"min_priority": "critical"},
    ],
)
def test_filters_are_bounded(spec):
    with pytest.raises(ValidationError):
        NotificationFilter.model_validate(spec)


async def test_a_full_window_grants_by_priority_then_arrival_and_skips_cancelled_waiters():
    windows = Windows(1)
    await windows.acquire("e", 0)
    order: list[str] = []

    async def wait(name: str, rank: int) -> None:
        await windows.acquire("e", rank)
        order.append(name)

    ranks = (("low", 0), ("normal-1", 1), ("urgent", 3), ("normal-2", 1), ("gone", 3))
    tasks = {name: asyncio.create_task(wait(name, rank)) for name, rank in ranks}
    await asyncio.sleep(0)
    assert windows.waiting("e") == 5
    tasks["gone"].cancel()
    for _ in range(4):
        windows.release("e")
        await asyncio.sleep(0)
    assert order == ["urgent", "normal-1", "normal-2", "low"]
    assert windows.outstanding("e") == 1
    windows.release("e")
    assert windows.outstanding("e") == 0
    assert windows.waiting("e") == 0
    await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_the_pacer_spaces_one_registration_and_forgets_what_no_longer_holds_back():
    pacer = Pacer()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        await pacer.wait("t", "e", 50.0)
    assert loop.time() - started >= 2 / 50 * 0.9  # the second and third waited
    await pacer.wait("other", "e", 50.0)  # another registration does not wait
    assert len(pacer) == 2


def test_fan_out_keeps_properties_only_for_trace_ids_short_enough_to_send():
    note = PushNotification(task_id="t-kept", seq=1, message="m")
    endpoint = [TaskPushNotificationConfig(task_id="t-kept", address="r@d.fabric", token="tok")]
    before = fanout._properties.cache_info().currsize
    for n in range(10):
        long_trace = "x" * (200_000 + n)  # a caller's trace id can be this long
        out = fanout.fan_out(note, endpoint, sender="s@d.fabric", trace_id=long_trace,
                             topics=Topics("p"))  # fmt: skip
        assert out.messages["r@d.fabric"].user_property("mqttpush-trace") is None  # not sent
        assert out.messages["r@d.fabric"].user_property("mqttpush-token") == "tok"
    assert fanout._properties.cache_info().currsize == before
    fanout.fan_out(note, endpoint, sender="s@d.fabric", trace_id="short", topics=Topics("p"))
    assert fanout._properties.cache_info().currsize == before + 1
