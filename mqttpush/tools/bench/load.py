"""Receivers and callers of the load parts (scale, shape, overload, soak), one per process.

Every receiver is a :class:`~.tally.Tally`: it counts each task's notifications until
a bounded drain after the last final one, so late notifications are told from lost ones.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mqttpush.errors import MqttPushError, RpcTimeoutError
from mqttpush.fabric import Fabric
from mqttpush.models import new_id
from mqttpush.settings import Settings
from mqttpush.tools.bench.harness import latencies, peak_rss_kb, ready, report, rss_kb, wait_for_go
from mqttpush.tools.bench.tally import Tally, merge

__all__ = ["ROLES", "settings_for"]


def settings_for(args: dict[str, Any], **agent: Any) -> Settings:  # noqa: ANN401 - section values
    """Settings of a worker: the bench's broker, topic prefix and client; the rest as configured."""
    broker = {"port": args["port"], "client": args.get("client", "native")}
    return Settings.load(None, topic_prefix=args["prefix"], broker=broker, agent=agent)


async def scale_receivers(args: dict[str, Any]) -> dict[str, Any]:
    """Serve ``receivers`` agents; on GO, each runs ``tasks`` tasks at once on the sender.

    Reports the counts of :meth:`Tally.summary` over every agent, when it started and
    finished (after the drain), and its resident memory before and after serving them.
    """
    count = args["count"]
    async with Fabric(settings_for(args)) as fabric:
        before = rss_kb()
        tallies = [Tally() for _ in args["receivers"]]
        for tally, address in zip(tallies, args["receivers"], strict=True):
            await fabric.serve(tally, address)
        ready()
        await wait_for_go()
        start = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for tally in tallies:
                group.create_task(
                    tally.run_tasks(
                        args["sender"], args["tasks"], count, args["timeout"], args["drain"]
                    )
                )
        done = time.monotonic()
        last_final = max(t.last for t in tallies) or done  # no final at all: when it gave up
        after = rss_kb()
    return {
        **merge([t.summary() for t in tallies]),
        "start": start,
        "last_final": last_final,
        "done": done,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "peak_kb": peak_rss_kb(),
    }


async def soak_receiver(args: dict[str, Any]) -> dict[str, Any]:
    """One receiver agent; each GO runs a round of ``tasks`` tasks, ``count`` in all.

    Reports each round's counts and time, then forgets the round's tasks (so its own
    bookkeeping does not grow from round to round). STOP ends it.
    """
    per_task = args["count"] // args["tasks"]
    async with Fabric(settings_for(args)) as fabric:
        tally = await fabric.serve(Tally(), args["address"])
        ready()
        while await wait_for_go() == "GO":
            tally.first = tally.last = 0.0
            start = time.monotonic()
            await tally.run_tasks(
                args["sender"], args["tasks"], per_task, args["timeout"], args["drain"]
            )
            summary = tally.summary()
            report({**summary, "elapsed": tally.last - start, "first": tally.first - start})
            tally.tasks.clear()
            tally.double_handled = tally.rpc_failed = 0
    return {"peak_kb": peak_rss_kb()}


async def overload_caller(args: dict[str, Any]) -> dict[str, Any]:
    """From GO until STOP, ``callers`` lanes call ``run_task`` then ``get_task_status``.

    Every call has the default timeout. Reports the calls answered in time, timed
    out or failed otherwise, and the latencies of the answered ones.
    """
    async with Fabric(settings_for(args)) as fabric:
        remote = fabric.remote(args["sender"])
        ready()
        await wait_for_go()
        stopping = asyncio.create_task(wait_for_go())
        samples: list[float] = []
        failures = {"timed_out": 0, "failed": 0}

        async def timed(name: str, **params: Any) -> None:  # noqa: ANN401 - call parameters
            started = time.perf_counter()
            try:
                await remote.call(name, params)
            except RpcTimeoutError:
                failures["timed_out"] += 1
            except MqttPushError:
                failures["failed"] += 1
            else:
                samples.append(time.perf_counter() - started)

        async def lane() -> None:
            while not stopping.done():
                task_id = new_id()
                await timed("run_task", task_id=task_id, params={"count": 0})
                await timed("get_task_status", task_id=task_id)

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(args["callers"]):
                group.create_task(lane())
        elapsed = time.perf_counter() - started
    answered = latencies(samples, elapsed) if samples else {"rate": 0.0}
    return {**answered, "answered": len(samples), **failures}


ROLES = {
    "scale-receivers": scale_receivers,
    "soak-receiver": soak_receiver,
    "overload-caller": overload_caller,
}
