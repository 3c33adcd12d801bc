"""Push contract: the same tests against the in-memory double and the real Mosquitto."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from mqttpush import TaskState, TaskStatus
from mqttpush.address import Address
from mqttpush.codec import Envelope, encode_notification
from mqttpush.models import DeliveryInfo, DeliveryState, PushNotification
from mqttpush.testing import Collector, eventually
from mqttpush.tools.demo import PushSender, expected_notifications

if TYPE_CHECKING:
    from tests.conftest import Kit

SENDER = "sender@fame.fabric"
ENDPOINT = "c@fame.fabric"


async def test_an_endpoint_gets_every_notification_and_each_is_delivered(kit: Kit):
    async with kit.fabric() as sender_side, kit.fabric() as endpoint_side:
        sender_agent = await sender_side.serve(PushSender(count=9, interval=0), SENDER)
        collector = await endpoint_side.serve(Collector(), ENDPOINT)
        sender = endpoint_side.remote(SENDER)
        await sender.register_push_endpoint(config={"task_id": "t", "address": ENDPOINT})
        await sender.run_task(task_id="t")
        status = TaskStatus.model_validate(await sender.get_task_status(task_id="t", wait=10))
        assert status.state is TaskState.COMPLETED
        await eventually(lambda: len(collector.got) == 10)
        assert [n.message for n in collector.got[:9]] == expected_notifications(9)
        assert [n.seq for n in collector.got] == list(range(1, 11))
        assert collector.got[-1].state is TaskState.COMPLETED
        await eventually(
            lambda: sender_agent.deliveries.summary("t") == {DeliveryState.DELIVERED: 10}
        )
        infos = [
            DeliveryInfo.model_validate(d) for d in await sender.get_delivery_status(task_id="t")
        ]
        assert {(d.endpoint, d.state) for d in infos} == {(ENDPOINT, DeliveryState.DELIVERED)}


async def test_a_failing_handler_is_reported_in_the_delivery_status(kit: Kit):
    async with kit.fabric() as fabric:
        sender_agent = await fabric.serve(PushSender(count=4, interval=0), SENDER)
        collector = await fabric.serve(Collector(fail_first=2), ENDPOINT)
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(config={"task_id": "f", "address": ENDPOINT})
        await sender.run_task(task_id="f")
        await eventually(lambda: len(collector.got) == 3)  # 5 sent, the first 2 failed
        await eventually(lambda: sender_agent.deliveries.pending("f") == 0)
        details = [d.detail for d in sender_agent.deliveries.status("f")]
        assert details.count("the endpoint's handler failed") == 2
        assert collector.stats.handler_failures == 2


async def test_a_canceled_task_stops_pushing(kit: Kit):
    async with kit.fabric() as fabric:
        await fabric.serve(PushSender(count=10_000, interval=0.01), SENDER)
        collector = await fabric.serve(Collector(), ENDPOINT)
        sender = fabric.remote(SENDER)
        await sender.register_push_endpoint(config={"task_id": "c", "address": ENDPOINT})
        await sender.run_task(task_id="c")
        await eventually(lambda: len(collector.got) >= 3)
        status = TaskStatus.model_validate(await sender.cancel_task(task_id="c"))
        assert status.state is TaskState.CANCELED
        await eventually(lambda: collector.got[-1].state is TaskState.CANCELED)
        count = len(collector.got)
        await asyncio.sleep(0.2)
        assert len(collector.got) == count


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_copies_are_handled_once_and_forged_tokens_not_at_all(kit: Kit, token):
    async with kit.fabric() as fabric:
        collector = await fabric.serve(Collector(), ENDPOINT)
        collector.expect_push_token("x", "right")
        raw = kit.transport()
        await raw.connect()
        try:
            topic = fabric.topics.push(Address.parse(ENDPOINT), "x")
            good = PushNotification(task_id="x", seq=1, message="once")
            forged = PushNotification(task_id="x", seq=2, message="forged")
            for notification, with_token in ((good, "right"), (good, "right"), (forged, token)):
                envelope = Envelope(SENDER, "push", token=with_token)
                await raw.publish(encode_notification(topic, notification, envelope))
            await eventually(
                lambda: (
                    collector.stats.notifications_duplicate == 1
                    and collector.stats.notifications_rejected == 1
                )
            )
        finally:
            await raw.disconnect()
        assert [n.message for n in collector.got] == ["once"]
