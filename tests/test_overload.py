"""Overload against the real broker: requests are answered ahead of queued notifications.

Counted, not timed: where a reply went relative to the notifications queued when its
request was handled, and in which order an endpoint saw a task's notifications.
"""

from __future__ import annotations

import asyncio

import pytest

from mqttpush import BackgroundTaskAgent, Fabric, TaskContext, TaskStatus
from mqttpush.models import DeliveryState, PushNotification, TaskState
from mqttpush.settings import AgentSettings, Settings
from mqttpush.testing import Collector, eventually

SENDER = "flood@fame.fabric"


class Flood(BackgroundTaskAgent):
    """Pushes ``count`` notifications as fast as delivery allows."""

    async def run_background_task(self, task: TaskContext) -> None:
        for i in range(int(task.params.get("count", 10))):
            await task.push(f"#{i + 1}")


def _sender_settings(settings: Settings, **agent: int) -> Settings:
    return settings.model_copy(update={"agent": AgentSettings(presence=False, **agent)})


@pytest.mark.timeout_s(120)
async def test_a_status_request_is_answered_ahead_of_thousands_of_queued_notifications(settings):
    # Before: the reply queued for the broker's Receive Maximum behind every notification
    # already waiting, so it left only after all of them had been published.
    count = 3_000
    sender_settings = _sender_settings(settings, delivery_window=count, publish_backlog=count)
    async with Fabric(sender_settings) as fabric, Fabric(settings) as caller:
        flood = await fabric.serve(Flood(), SENDER)
        remote = caller.remote(SENDER, timeout=60)  # generous: answered, not how fast
        # An endpoint that is away: the broker acknowledges each notification, nobody reads.
        await remote.register_push_endpoint(config={"task_id": "big", "address": "away@x.y"})
        await remote.run_task(task_id="big", params={"count": count})
        await eventually(lambda: flood.deliveries.summary("big").get(DeliveryState.QUEUED, 0) > 0)
        status = TaskStatus.model_validate(await remote.get_task_status(task_id="big"))
        after = flood.deliveries.summary("big")  # when the reply came back
    queued = status.deliveries.get(DeliveryState.QUEUED, 0)
    published_then = status.deliveries.get(DeliveryState.PUBLISHED, 0)
    published_since = after.get(DeliveryState.PUBLISHED, 0) - published_then
    assert queued >= 1_000, status.deliveries  # the request met a long queue
    assert published_since < queued // 2, (queued, published_since)  # and overtook it


class Ordered(Collector):
    """Records every notification; one event per task at its final notification."""

    def __init__(self) -> None:
        super().__init__()
        self.finals: dict[str, asyncio.Event] = {}

    async def on_message(self, notification: PushNotification) -> None:
        await super().on_message(notification)
        if notification.state is not TaskState.WORKING:
            self.finals.setdefault(notification.task_id, asyncio.Event()).set()


@pytest.mark.timeout_s(120)
async def test_each_endpoint_sees_every_task_in_seq_order_with_the_final_one_last(settings):
    tasks, count = 12, 60
    sender_settings = _sender_settings(settings, delivery_window=20, publish_backlog=8)
    async with Fabric(sender_settings) as fabric, Fabric(settings) as receivers:
        await fabric.serve(Flood(), SENDER)
        endpoints = [await receivers.serve(Ordered(), f"end{i}@fame.fabric") for i in range(3)]
        remote = receivers.remote(SENDER, timeout=60)
        task_ids = [f"t{n}" for n in range(tasks)]
        for task_id in task_ids:
            for endpoint in endpoints:
                config = {"task_id": task_id, "address": str(endpoint.address)}
                await remote.register_push_endpoint(config=config)
        await asyncio.gather(
            *(remote.run_task(task_id=t, params={"count": count}) for t in task_ids)
        )
        for endpoint in endpoints:
            for task_id in task_ids:
                event = endpoint.finals.setdefault(task_id, asyncio.Event())
                await asyncio.wait_for(event.wait(), 60)
        await asyncio.sleep(0.2)  # anything arriving after a final one would show now
    for endpoint in endpoints:
        for task_id in task_ids:
            seqs = [n.seq for n in endpoint.got if n.task_id == task_id]
            assert seqs == list(range(1, count + 2)), (endpoint.address, task_id, seqs)
            last = [n for n in endpoint.got if n.task_id == task_id][-1]
            assert last.state is TaskState.COMPLETED
