"""The overload mode (``mqttpush bench --overload``): 1,000 endpoints x 101 notifications.

One sender; ``overload_endpoints`` receiver agents spread over processes, each with one
task of ``overload_count`` notifications plus the final one, all started at once; and
a caller that keeps calling ``run_task`` and ``get_task_status`` on the same sender,
each call with the default timeout, from the start of the burst to its end. Reported:
the calls answered within their timeout and their latency, and every notification
counted (lost, late with its lateness, out of seq order, final not last).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.run import SENDER
from mqttpush.tools.bench.scale import arrivals, spread

if TYPE_CHECKING:
    from mqttpush.tools.bench.run import Run

__all__ = ["overload"]


async def overload(run: Run) -> list[Figure]:
    """The burst, the RPCs during it, and what arrived."""
    o = run.options
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    names = [f"o{i}@bench.fabric" for i in range(o.overload_endpoints)]
    async with (
        run.worker("push-sender", prefix=prefix, address=SENDER),
        run.worker(
            "overload-caller", prefix=prefix, sender=SENDER, callers=o.overload_callers
        ) as caller,
    ):
        results, total = await spread(
            run, prefix, names, tasks=1, count=o.overload_count,
            processes=o.scale_processes, between=caller,
        )  # fmt: skip
        calls = await caller.result(o.timeout)
    burst = max(r["last_final"] for r in results) - min(r["start"] for r in results)
    counts = arrivals(total)
    unanswered = calls["timed_out"] + calls["failed"] + total["rpc_failed"]
    notes = {
        **counts,
        "endpoints": o.overload_endpoints,
        "notifications_per_endpoint": o.overload_count + 1,
        "receiver_processes": o.scale_processes,
        "burst_s": round(burst, 2),
        "notifications_per_s": round(total["expected"] / burst) if burst else None,
        "calls_answered": calls["answered"],
        "calls_timed_out": calls["timed_out"],
        "calls_failed": calls["failed"],
        "receiver_setup_calls_failed": total["rpc_failed"],
        "callers": o.overload_callers,
        "drain_s": o.drain,
    }
    run.echo(f"  overload: {burst:.1f} s, {calls['answered']} calls answered, "
             f"{unanswered} not; lost {counts['lost']}, late {counts['late']} "
             f"(p99 {counts['lateness_ms_p99']} ms), "
             f"out of order {counts['out_of_order']}")  # fmt: skip
    p50, p99 = calls.get("p50", 0.0) * 1e3, calls.get("p99", 0.0) * 1e3
    return [
        Figure(name=f"overload: {o.overload_endpoints:,} endpoints x {o.overload_count + 1} "
               "notifications, time to last final", unit="s", value=burst, better="lower",
               notes=notes),
        Figure(name="overload: RPCs not answered within their timeout (default 10 s)",
               unit="count", value=float(unanswered), better="lower", limit=0),
        Figure(name="overload: RPC latency during the burst, p50", unit="ms", value=p50,
               better="lower", notes={"p99_ms": round(p99, 1), "answered": calls["answered"]}),
        Figure(name="overload: RPC latency during the burst, p99", unit="ms", value=p99,
               better="lower"),
        Figure(name="overload: notifications lost (never arrived)", unit="count",
               value=float(counts["lost"]), better="lower", limit=0),
        Figure(name="overload: notifications late (after their task's final)", unit="count",
               value=float(counts["late"]), better="lower", limit=0),
        Figure(name="overload: lateness of late notifications, p99", unit="ms",
               value=counts["lateness_ms_p99"], better="lower"),
        Figure(name="overload: out-of-seq-order arrivals", unit="count",
               value=float(counts["out_of_order"]), better="lower", limit=0),
        Figure(name="overload: endpoints whose final notification was not the last",
               unit="count", value=float(counts["final_not_last"]), better="lower", limit=0),
    ]  # fmt: skip
