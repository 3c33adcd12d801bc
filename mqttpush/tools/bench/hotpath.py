"""The ``push-cpu`` worker: CPU time per notification of the library alone, in one process.

A sender and an endpoint on one fabric over the in-memory broker: every notification
is encoded, published, routed, decoded, deduplicated, handled, receipted and marked
delivered, with no broker or network in between. The process's CPU time (threads
included, so a span exporter's too) divided by the notifications is the hot path's
cost, much less sensitive to a busy machine than a throughput figure.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from mqttpush.agent.background import BackgroundTaskAgent
from mqttpush.agent.base import Agent
from mqttpush.fabric import Fabric
from mqttpush.models import new_id
from mqttpush.settings import Settings
from mqttpush.tools.bench.harness import ready
from mqttpush.tools.bench.instrumented import instruments_for
from mqttpush.transport.memory import MemoryBroker

if TYPE_CHECKING:
    from mqttpush.agent.context import TaskContext
    from mqttpush.models import PushNotification

__all__ = ["push_cpu"]

_SENDER, _ENDPOINT = "cpu-sender@bench.fabric", "cpu-endpoint@bench.fabric"


class _Pusher(BackgroundTaskAgent):
    async def run_background_task(self, task: TaskContext) -> None:
        for i in range(int(task.params["count"])):
            await task.push(f"Notification #{i + 1}")


class _Sink(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.left = 0
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        self.left = count
        self.done.clear()

    async def on_message(self, notification: PushNotification) -> None:
        del notification
        self.left -= 1
        if self.left <= 0:
            self.done.set()


async def _one_task(fabric: Fabric, sender: _Pusher, sink: _Sink, count: int) -> float:
    """Run one task of ``count`` notifications; the CPU seconds it took, receipts included."""
    task_id = new_id()
    remote = fabric.remote(_SENDER)
    await remote.register_push_endpoint(config={"task_id": task_id, "address": _ENDPOINT})
    sink.expect(count + 1)  # and the final notification
    started = time.process_time()
    await remote.run_task(task_id=task_id, params={"count": count})
    await sink.done.wait()
    while sender.deliveries.pending(task_id):  # noqa: ASYNC110 - no event says "all receipted"
        await asyncio.sleep(0.001)
    return time.process_time() - started


async def push_cpu(args: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds per notification with ``args["instruments"]`` (off, metrics, tracing)."""
    settings = Settings.load(None, topic_prefix="bench/cpu")
    memory = MemoryBroker()
    instruments = instruments_for(args["instruments"])
    count = int(args["count"])
    ready()
    async with Fabric(settings, transport=memory.transport(), instruments=instruments) as fabric:
        sender = await fabric.serve(_Pusher(), _SENDER)
        sink = await fabric.serve(_Sink(), _ENDPOINT)
        await _one_task(fabric, sender, sink, min(count, 500))  # warm-up
        cpu = await _one_task(fabric, sender, sink, count)
    return {"cpu_per_notification": cpu / (count + 1)}
