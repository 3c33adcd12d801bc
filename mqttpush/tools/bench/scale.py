"""Many endpoints at once: the scale point (rounds on one sender) and the scale shape series.

Receivers are :class:`~.tally.Tally` agents spread over worker processes. Each counts
its tasks' notifications until a bounded drain after the last final one, so a
notification that arrives after its task's final is reported as late (with its
lateness), and lost is only what never arrived.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mqttpush.fabric import Fabric
from mqttpush.settings import Settings
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.run import SENDER, median, percentile
from mqttpush.tools.bench.tally import merge

if TYPE_CHECKING:
    from mqttpush.tools.bench.procs import Worker
    from mqttpush.tools.bench.run import Run

__all__ = ["arrivals", "lateness", "scale", "shape", "spread"]


async def spread(
    run: Run,
    prefix: str,
    names: list[str],
    *,
    tasks: int,
    count: int,
    processes: int,
    between: Worker | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run receivers ``names`` over ``processes`` workers, each agent ``tasks`` tasks.

    All start together (GO); ``between``, if given, gets GO with them and a second
    line once every receiver has reported. Returns each worker's result and their sum.
    """
    per_process = -(-len(names) // max(1, processes))
    workers = [
        run.worker(
            "scale-receivers", prefix=prefix, sender=SENDER,
            receivers=names[start : start + per_process], tasks=tasks, count=count,
        )
        for start in range(0, len(names), per_process)
    ]  # fmt: skip
    try:
        for worker in workers:
            await worker.start(ready_within=max(30.0, len(names) / 20))
        for worker in [*workers, *([between] if between else [])]:
            worker.go()
        results = [await w.result(run.options.timeout * 2) for w in workers]
        if between is not None:
            between.go("STOP")
    finally:
        for worker in workers:
            await worker.stop()
    return results, merge(results)


def lateness(total: dict[str, Any]) -> dict[str, Any]:
    """Late notifications: how many, and their lateness p50/p99/max in ms."""
    late = total.get("lateness", [])
    return {
        "late": total.get("late", 0),
        "lateness_ms_p50": round(percentile(late, 0.5) * 1e3, 1),
        "lateness_ms_p99": round(percentile(late, 0.99) * 1e3, 1),
        "lateness_ms_max": round(max(late, default=0.0) * 1e3, 1),
    }


def arrivals(total: dict[str, Any]) -> dict[str, Any]:
    """The counts of a run worth printing (everything but the lateness samples)."""
    keys = ("expected", "handled", "lost", "no_final", "out_of_order", "final_not_last",
            "double_handled", "duplicates_dropped", "rpc_failed")  # fmt: skip
    errors = {"rpc_errors": total.get("rpc_errors", [])[:3]}
    return {key: total.get(key, 0) for key in keys} | lateness(total) | errors


async def scale(run: Run) -> list[Figure]:
    """Rounds of many concurrent tasks on one sender: time, arrivals, sender memory."""
    o = run.options
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    keep = o.scale_receivers * o.scale_tasks  # one round's tasks: later rounds replace them
    sender = run.worker("push-sender", prefix=prefix, address=SENDER, max_finished=keep)
    elapsed, memory, rounds, receiver_peak = [], [], [], 0
    settings = Settings.load(None, topic_prefix=prefix, broker={"port": run.port})
    async with sender, Fabric(settings) as fabric:
        for round_no in range(o.scale_rounds):
            names = [f"r{round_no}-{i}@bench.fabric" for i in range(o.scale_receivers)]
            results, total = await spread(
                run, prefix, names, tasks=o.scale_tasks, count=o.scale_count,
                processes=o.scale_processes,
            )  # fmt: skip
            rounds.append(total)
            elapsed.append(max(r["last_final"] for r in results) - min(r["start"] for r in results))
            receiver_peak = max(receiver_peak, *(r["peak_kb"] for r in results))
            memory.append(await fabric.remote(SENDER).memory())
            mb = memory[-1]["rss_kb"] / 1024
            run.echo(f"  scale round {round_no + 1}: {elapsed[-1]:.2f} s, lost {total['lost']}, "
                     f"late {total['late']}, sender RSS {mb:.1f} MB")  # fmt: skip
    total = merge(rounds)
    tasks = o.scale_receivers * o.scale_tasks
    # Round 1 warms up (imports, buffers); growth after it is what completed tasks cost.
    growth = memory[-1]["rss_kb"] - memory[1]["rss_kb"] if len(memory) > 2 else None  # noqa: PLR2004
    notes = {
        **arrivals(total),
        "tasks": tasks,
        "receivers": o.scale_receivers,
        "receiver_processes": o.scale_processes,
        "notifications_per_round": tasks * (o.scale_count + 1),
        "rounds": o.scale_rounds,
        "drain_s": o.drain,
        "sender_rss_mb_after_each_round": [round(m["rss_kb"] / 1024, 1) for m in memory],
        "sender_peak_mb": round(memory[-1]["peak_kb"] / 1024, 1),
        "receiver_process_peak_mb": round(receiver_peak / 1024, 1),
        "sender_rss_growth_kb_after_round_2": growth,
    }
    return [
        Figure(
            name=f"scale: {tasks:,} tasks over {o.scale_receivers} receivers, time to last final",
            unit="s", value=median(elapsed), better="lower", runs={"mqttpush": elapsed},
            notes=notes,
        ),
        Figure(
            name="scale: notifications lost (never arrived) + handled twice (all rounds)",
            unit="count", value=float(total["lost"] + total["double_handled"]),
            better="lower", limit=0,
        ),
        Figure(
            name="scale: calls that failed (register_push_endpoint, run_task; all rounds)",
            unit="count", value=float(total["rpc_failed"]), better="lower", limit=0,
            notes={"first_errors": total.get("rpc_errors", [])[:3]},
        ),
        Figure(
            name="scale: notifications late (after their task's final, all rounds)",
            unit="count", value=float(total["late"]), better="lower",
            notes=lateness(total) | {"out_of_order": total["out_of_order"]},
        ),
    ]  # fmt: skip


async def _shape_point(run: Run, endpoints: int) -> dict[str, Any]:
    o = run.options
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    count = max(1, o.shape_total // endpoints)
    async with run.worker("push-sender", prefix=prefix, address=SENDER) as sender:
        before = sender.rss_kb()
        names = [f"e{i}@bench.fabric" for i in range(endpoints)]
        results, total = await spread(
            run, prefix, names, tasks=1, count=count,
            processes=min(o.scale_processes, endpoints),
        )  # fmt: skip
        after = sender.rss_kb()
    elapsed = max(r["last_final"] for r in results) - min(r["start"] for r in results)
    notifications = endpoints * (count + 1)
    receiver_kb = sum(r["rss_after_kb"] - r["rss_before_kb"] for r in results)
    return {
        "endpoints": endpoints,
        "notifications": notifications,
        "per_endpoint": count + 1,
        "elapsed_s": round(elapsed, 3),
        "us_per_notification": elapsed / notifications * 1e6,
        "receiver_kb_per_endpoint": round(receiver_kb / endpoints, 1),
        "sender_kb_per_endpoint": round((after - before) / endpoints, 1),
        **arrivals(total),
    }


def _endpoints(count: int) -> str:
    return f"{count:,} endpoint" + ("" if count == 1 else "s")


async def shape(run: Run) -> list[Figure]:
    """Time per notification and memory per endpoint at each of ``shape_points``.

    Each point pushes about ``shape_total`` notifications in all, one task per endpoint,
    on a fresh sender, so the points differ only in how many endpoints share the work.
    """
    points = []
    for endpoints in run.options.shape_points:
        point = await _shape_point(run, endpoints)
        points.append(point)
        run.echo(f"  shape, {_endpoints(endpoints)}: {point['us_per_notification']:.0f} µs per "
                 f"notification, {point['receiver_kb_per_endpoint']:.0f} KiB per endpoint "
                 f"(receivers), {point['sender_kb_per_endpoint']:.1f} KiB (sender), "
                 f"lost {point['lost']}, late {point['late']}")  # fmt: skip
    first = points[0]
    return [
        Figure(
            name=f"shape: time per notification, {_endpoints(p['endpoints'])}",
            unit="µs",
            value=p["us_per_notification"],
            baseline=first["us_per_notification"],
            baseline_label=f"the same at {_endpoints(first['endpoints'])}, this run",
            better="lower",
            notes=p,
        )
        for p in points
    ]
