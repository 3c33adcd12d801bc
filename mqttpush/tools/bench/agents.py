"""The mqttpush side of each benchmark: agents and callers, one role per worker process."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from mqttpush.agent.background import BackgroundTaskAgent
from mqttpush.agent.base import Agent
from mqttpush.fabric import Fabric
from mqttpush.models import TaskState, new_id
from mqttpush.rpc.operation import operation
from mqttpush.settings import Settings
from mqttpush.tools.bench.harness import (
    drive_calls,
    peak_rss_kb,
    ready,
    rss_kb,
    until_stopped,
    wait_for_go,
)
from mqttpush.tools.bench.hotpath import push_cpu
from mqttpush.tools.bench.instrumented import instruments_for

if TYPE_CHECKING:
    from mqttpush.agent.context import TaskContext
    from mqttpush.models import PushNotification

__all__ = ["ROLES", "Blaster", "Ping", "Tally"]


def settings_for(args: dict[str, Any], **agent: Any) -> Settings:  # noqa: ANN401 - section values
    """Settings of a worker: the bench's broker and topic prefix; the rest as configured."""
    return Settings.load(
        None, topic_prefix=args["prefix"], broker={"port": args["port"]}, agent=agent
    )


class Blaster(BackgroundTaskAgent):
    """Pushes ``params["count"]`` notifications per task, as fast as delivery allows."""

    async def run_background_task(self, task: TaskContext) -> dict[str, int]:
        """Push the notifications; the result says how many."""
        count = int(task.params.get("count", 10))
        for i in range(count):
            await task.push(f"Notification #{i + 1}")
        return {"sent": count}

    @operation
    async def memory(self) -> dict[str, int]:
        """Resident memory now and at peak (KiB), and the tasks this agent keeps."""
        return {"rss_kb": rss_kb(), "peak_kb": peak_rss_kb(), "tasks_kept": len(self.tasks)}


class Ping(Agent):
    """The smallest operation: the RPC benchmarks measure everything but the work."""

    @operation
    async def ping(self) -> str:
        """Answer ``"pong"``."""
        return "pong"


class Tally(Agent):
    """Counts notifications per sender task: handled, handled twice, and when they came."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: dict[str, set[str]] = {}
        self.double_handled = 0
        self.first = 0.0
        self.last = 0.0
        self.finished: dict[str, asyncio.Event] = {}

    def expect(self, task_id: str) -> asyncio.Event:
        """Start counting the notifications of ``task_id``; the event is set at its last one."""
        self.handled[task_id] = set()
        event = self.finished[task_id] = asyncio.Event()
        return event

    async def on_message(self, notification: PushNotification) -> None:
        """Count one notification."""
        now = time.monotonic()
        if not self.first:
            self.first = now
        seen = self.handled.get(notification.task_id)
        if seen is None:
            await super().on_message(notification)
            return
        if notification.id in seen:
            self.double_handled += 1
        seen.add(notification.id)
        if notification.state is not TaskState.WORKING:
            self.last = now
            self.finished[notification.task_id].set()

    async def run_tasks(self, sender: str, tasks: int, count: int, timeout: float) -> None:
        """Register for and start ``tasks`` tasks of ``count`` notifications on ``sender``."""
        remote = self.remote(sender)

        async def one() -> None:
            task_id = new_id()
            done = self.expect(task_id)
            await remote.register_push_endpoint(
                config={"task_id": task_id, "address": str(self.address)}
            )
            await remote.run_task(task_id=task_id, params={"count": count})
            async with asyncio.timeout(timeout):
                await done.wait()

        async with asyncio.TaskGroup() as group:
            for _ in range(tasks):
                group.create_task(one())

    def lost(self, count: int) -> int:
        """Notifications (working ones plus the final one per task) not handled."""
        return sum(count + 1 - len(ids) for ids in self.handled.values())


async def push_sender(args: dict[str, Any]) -> dict[str, Any]:
    """Serve a :class:`Blaster` until stopped."""
    settings = settings_for(args, max_finished_tasks=args.get("max_finished", 10_000))
    instruments = instruments_for(args.get("instruments", "off"))
    async with Fabric(settings, instruments=instruments) as fabric:
        await fabric.serve(Blaster(), args["address"])
        ready()
        await until_stopped()
    return {"peak_kb": peak_rss_kb()}


async def push_receiver(args: dict[str, Any]) -> dict[str, Any]:
    """Run one task of ``count`` notifications on the sender; the rate is first to last."""
    count = args["count"]
    instruments = instruments_for(args.get("instruments", "off"))
    async with Fabric(settings_for(args), instruments=instruments) as fabric:
        tally = Tally()
        await fabric.serve(tally, args["address"])
        ready()
        await tally.run_tasks(args["sender"], 1, count, args["timeout"])
    return {
        "rate": count / (tally.last - tally.first),
        "lost": tally.lost(count),
        "double_handled": tally.double_handled,
        "duplicates_dropped": tally.stats.notifications_duplicate,
        "peak_kb": peak_rss_kb(),
    }


async def ping_server(args: dict[str, Any]) -> dict[str, Any]:
    """Serve :class:`Ping` until stopped."""
    async with Fabric(settings_for(args)) as fabric:
        await fabric.serve(Ping(), args["address"])
        ready()
        await until_stopped()
    return {"peak_kb": peak_rss_kb()}


async def rpc_caller(args: dict[str, Any]) -> dict[str, Any]:
    """``calls`` calls of ``ping``, ``concurrency`` at once, on one fabric."""
    async with Fabric(settings_for(args)) as fabric:
        remote = fabric.remote(args["target"])

        async def call(_: int) -> float:
            start = time.perf_counter()
            await remote.ping()
            return time.perf_counter() - start

        return await drive_calls(call, None, args["calls"], args["concurrency"], args)


async def scale_receivers(args: dict[str, Any]) -> dict[str, Any]:
    """Serve ``receivers`` agents; on GO, each runs ``tasks`` tasks at once on the sender."""
    count = args["count"]
    async with Fabric(settings_for(args)) as fabric:
        tallies = [Tally() for _ in args["receivers"]]
        for tally, address in zip(tallies, args["receivers"], strict=True):
            await fabric.serve(tally, address)
        ready()
        await wait_for_go()
        start = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for tally in tallies:
                group.create_task(
                    tally.run_tasks(args["sender"], args["tasks"], count, args["timeout"])
                )
        done = time.monotonic()
    return {
        "start": start,
        "done": done,
        "handled": sum(len(ids) for t in tallies for ids in t.handled.values()),
        "lost": sum(t.lost(count) for t in tallies),
        "double_handled": sum(t.double_handled for t in tallies),
        "duplicates_dropped": sum(t.stats.notifications_duplicate for t in tallies),
        "peak_kb": peak_rss_kb(),
    }


async def demo_agent(args: dict[str, Any]) -> dict[str, Any]:
    """Serve the seed's sender or receiver (the sender with ``interval``) until stopped."""
    from mqttpush.tools.demo import PushReceiver, PushSender  # noqa: PLC0415

    settings = settings_for(args)
    demo = settings.demo
    async with Fabric(settings) as fabric:
        if args["which"] == "sender":
            await fabric.serve(PushSender(interval=args["interval"]), demo.sender_address)
        else:
            await fabric.serve(PushReceiver(demo.sender_address), demo.receiver_address)
        ready()
        await until_stopped()
    return {"peak_kb": peak_rss_kb()}


async def seed_client(args: dict[str, Any]) -> dict[str, Any]:
    """Run the seed's client ``runs`` times; wall time per run, connect included."""
    from mqttpush.tools.demo import run_client  # noqa: PLC0415

    settings = settings_for(args)
    ready()
    times = []
    for _ in range(args["runs"]):
        start = time.perf_counter()
        result = await run_client(settings)
        times.append(time.perf_counter() - start)
        if len(result["notifications"]) != settings.demo.notification_count:
            return {"error": f"got {len(result['notifications'])} notifications"}
    return {"times": times}


ROLES = {
    "push-sender": push_sender,
    "push-receiver": push_receiver,
    "ping-server": ping_server,
    "rpc-caller": rpc_caller,
    "scale-receivers": scale_receivers,
    "demo-agent": demo_agent,
    "seed-client": seed_client,
    "push-cpu": push_cpu,
}
