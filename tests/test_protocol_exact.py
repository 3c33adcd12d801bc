"""Where docs/protocol.md and the code once disagreed: each rule as the document states it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mqttpush import Agent, codec
from mqttpush.models import PushNotification
from mqttpush.testing import FakeHost
from mqttpush.transport import Message

PROTOCOL = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


async def test_receipts_carry_no_trace_id_as_the_envelope_table_says():
    # A message of receipts can answer notifications of several traces at once, so it
    # carries none (the table said "the notification's trace id"; the code never did).
    async with FakeHost() as host:
        agent = await host.serve(Agent(), "r@test.fabric")
        for seq, trace in ((1, "a" * 32), (2, "b" * 32)):
            note = PushNotification(task_id="t", seq=seq, message="m")
            envelope = codec.Envelope("s@test.fabric", "push", None, trace)
            await agent.handle_push(codec.encode_notification("p/push/t", note, envelope), "t")
        await asyncio.sleep(0.05)  # the batcher publishes on the next loop iteration
        receipts = [m for m in host.published if m.topic.endswith("/ack")]
        assert len(receipts) == 1
        assert len(codec.decode_receipts(receipts[0].payload)) == 2
        properties = dict(receipts[0].user_properties)
        assert codec.TRACE_ID not in properties
        assert properties[codec.OPERATION] == "ack"
    row = next(line for line in PROTOCOL.read_text().splitlines() if "`mqttpush-trace`" in line)
    assert row.rstrip(" |").endswith("Absent (a message of receipts may answer several traces)")


def test_the_reliable_receiver_sends_the_receipt_before_the_puback():
    text = " ".join(PROTOCOL.read_text().split())
    assert "The receipt must be *sent* (handed to the client library)" in text
    assert "not acknowledged by the broker" in text


async def test_a_lone_surrogate_in_params_is_invalid_params_not_a_parse_error():
    async with FakeHost() as host:
        agent = await host.serve(Agent(), "r@test.fabric")
        payload = b'{"jsonrpc":"2.0","id":"x","method":"any","params":{"k":["\\ud83d"]}}'
        await agent.handle_request(Message("p/rpc", payload, response_topic="r"))
        (reply,) = host.published
        body = codec.decode_response(reply.payload)
        assert body.id == "x"
        assert body.error is not None
        assert body.error.code == -32602
        assert body.error.data[0]["loc"] == ["k", 0]
