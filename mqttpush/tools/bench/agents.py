"""The mqttpush side of each benchmark: agents and callers, one role per worker process."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mqttpush.agent.background import BackgroundTaskAgent
from mqttpush.agent.base import Agent
from mqttpush.fabric import Fabric
from mqttpush.rpc.operation import operation
from mqttpush.tools.bench import load
from mqttpush.tools.bench.harness import (
    drive_calls,
    peak_rss_kb,
    ready,
    rss_kb,
    until_stopped,
)
from mqttpush.tools.bench.hotpath import push_cpu
from mqttpush.tools.bench.instrumented import instruments_for
from mqttpush.tools.bench.load import settings_for
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.tally import Tally

if TYPE_CHECKING:
    from mqttpush.agent.context import TaskContext

__all__ = ["ROLES", "Blaster", "Ping", "settings_for"]


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
        cpu = time.process_time()
        await tally.run_tasks(args["sender"], 1, count, args["timeout"], 0.0)
        cpu = time.process_time() - cpu
        summary = tally.summary()
    if summary["no_final"] or summary["rpc_failed"]:
        raise BenchError(f"push receiver: the task did not complete ({summary})")
    return {
        "rate": count / (tally.last - tally.first),
        "cpu": cpu,
        "lost": summary["lost"],
        "late": summary["late"],
        "double_handled": summary["double_handled"],
        "duplicates_dropped": summary["duplicates_dropped"],
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
    "demo-agent": demo_agent,
    "seed-client": seed_client,
    "push-cpu": push_cpu,
    **load.ROLES,
}
