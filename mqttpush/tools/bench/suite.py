"""The benchmark suite: each figure measured beside its raw baseline, in the same run.

Every figure is the median of ``repeat`` runs, and each run measures the baseline and
mqttpush back to back, so a machine that gets busier affects both alike. Every process
(broker, senders, receivers, callers) is separate, as in a deployment.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from mqttpush.fabric import Fabric
from mqttpush.settings import Settings
from mqttpush.tools.bench import cluster, footprint, pool, variations
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.instrumented import instrument_cost
from mqttpush.tools.bench.run import REFERENCE_PUSH_RATE, SENDER, Options, Run, median

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from pathlib import Path

__all__ = ["STEPS", "Options", "run_suite"]


async def _push_throughput(run: Run) -> Figure:
    raws, ours, notes = [], [], dict[str, Any]()
    for _ in range(run.options.repeat):
        raw, value, detail = await run.push_pair()
        raws.append(raw)
        ours.append(value)
        for key in ("lost", "double_handled", "duplicates_dropped"):
            notes[key] = notes.get(key, 0) + detail[key]
        run.echo(f"  push: raw {raw:,.0f}/s, mqttpush {value:,.0f}/s")
    notes["vs_reference_sdk"] = round(median(ours) / REFERENCE_PUSH_RATE, 2)
    return Figure(
        name="push throughput, 1 sender -> 1 receiver, QoS 1, dedup + receipts",
        unit="notifications/s",
        value=median(ours),
        baseline=median(raws),
        baseline_label="raw aiomqtt publisher -> subscriber, QoS 1",
        target=0.9,
        limit=5 * REFERENCE_PUSH_RATE,
        runs={"mqttpush": ours, "baseline": raws},
        notes=notes,
    )


async def _rpc(run: Run) -> list[Figure]:
    seq_raw, seq_ours, conc_raw, conc_ours = [], [], [], []
    for _ in range(run.options.repeat):
        raw, ours = await run.rpc_pair(1)
        seq_raw.append(raw)
        seq_ours.append(ours)
        run.echo(f"  rpc p50: raw {raw['p50'] * 1e3:.3f} ms, mqttpush {ours['p50'] * 1e3:.3f} ms")
        raw, ours = await run.rpc_pair(run.options.concurrency)
        conc_raw.append(raw)
        conc_ours.append(ours)
        run.echo(f"  rpc x{run.options.concurrency}: raw {raw['rate']:,.0f}/s, "
                 f"mqttpush {ours['rate']:,.0f}/s")  # fmt: skip
    figures = []
    for pct, target in (("p50", 1.3), ("p90", None), ("p99", None)):
        ours_ms = [r[pct] * 1e3 for r in seq_ours]
        raw_ms = [r[pct] * 1e3 for r in seq_raw]
        figures.append(
            Figure(
                name=f"RPC round trip, sequential, {pct}",
                unit="ms",
                value=median(ours_ms),
                baseline=median(raw_ms),
                baseline_label="raw aiomqtt request/response (Response Topic + Correlation Data)",
                better="lower",
                target=target,
                runs={"mqttpush": ours_ms, "baseline": raw_ms},
            )
        )
    ours_rate = [r["rate"] for r in conc_ours]
    raw_rate = [r["rate"] for r in conc_raw]
    figures.append(
        Figure(
            name=f"RPC throughput, {run.options.concurrency} concurrent callers",
            unit="calls/s",
            value=median(ours_rate),
            baseline=median(raw_rate),
            baseline_label="raw aiomqtt, same callers on one client",
            target=0.8,
            runs={"mqttpush": ours_rate, "baseline": raw_rate},
        )
    )
    return figures


async def _scale(run: Run) -> list[Figure]:
    o = run.options
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    keep = o.scale_receivers * o.scale_tasks  # one round's tasks: later rounds replace them
    sender = run.worker("push-sender", prefix=prefix, address=SENDER, max_finished=keep)
    elapsed, memory, totals = [], [], {"lost": 0, "double_handled": 0, "duplicates_dropped": 0}
    receiver_peak = 0
    settings = Settings.load(None, topic_prefix=prefix, broker={"port": run.port})
    async with sender, Fabric(settings) as fabric:
        for round_no in range(o.scale_rounds):
            per_process = -(-o.scale_receivers // o.scale_processes)
            names = [f"r{round_no}-{i}@bench.fabric" for i in range(o.scale_receivers)]
            workers = [
                run.worker(
                    "scale-receivers", prefix=prefix, sender=SENDER,
                    receivers=names[start : start + per_process],
                    tasks=o.scale_tasks, count=o.scale_count,
                )
                for start in range(0, len(names), per_process)
            ]  # fmt: skip
            try:
                for worker in workers:
                    await worker.start()
                for worker in workers:
                    worker.go()
                results = [await w.result(o.timeout) for w in workers]
            finally:
                for worker in workers:
                    await worker.stop()
            elapsed.append(max(r["done"] for r in results) - min(r["start"] for r in results))
            for key in totals:
                totals[key] += sum(r[key] for r in results)
            receiver_peak = max(receiver_peak, *(r["peak_kb"] for r in results))
            mem = await fabric.remote(SENDER).memory()
            memory.append(mem)
            run.echo(f"  scale round {round_no + 1}: {elapsed[-1]:.2f} s, "
                     f"sender RSS {mem['rss_kb'] / 1024:.1f} MB")  # fmt: skip
    tasks = o.scale_receivers * o.scale_tasks
    notifications = tasks * (o.scale_count + 1)
    # Round 1 warms up (imports, buffers); growth after it is what completed tasks cost.
    growth = memory[-1]["rss_kb"] - memory[1]["rss_kb"] if len(memory) > 2 else None  # noqa: PLR2004
    notes = {
        **totals,
        "tasks": tasks,
        "receivers": o.scale_receivers,
        "receiver_processes": o.scale_processes,
        "notifications_per_round": notifications,
        "rounds": o.scale_rounds,
        "sender_rss_mb_after_each_round": [round(m["rss_kb"] / 1024, 1) for m in memory],
        "sender_peak_mb": round(memory[-1]["peak_kb"] / 1024, 1),
        "receiver_process_peak_mb": round(receiver_peak / 1024, 1),
        "sender_rss_growth_kb_after_round_2": growth,
    }
    return [
        Figure(
            name=f"scale: {tasks:,} tasks over {o.scale_receivers} receivers, time to complete",
            unit="s",
            value=median(elapsed),
            better="lower",
            runs={"mqttpush": elapsed},
            notes=notes,
        ),
        Figure(
            name="scale: notifications lost + handled twice (all rounds)",
            unit="count",
            value=float(totals["lost"] + totals["double_handled"]),
            better="lower",
            limit=0,
        ),
    ]


#: The suite's parts, by the name ``--only`` takes.
STEPS: dict[str, tuple[str, Callable[[Run], Awaitable[Figure | list[Figure]]]]] = {
    "push": ("push throughput", _push_throughput),
    "rpc": ("RPC", _rpc),
    "scale": ("scale", _scale),
    "memory": ("memory and import time", footprint.memory),
    "seed": ("seed scenario", footprint.seed),
    "priority": ("latency per priority under load", variations.priority_latency),
    "filter": ("what a filter costs the sender", variations.filter_cost),
    "pool": ("agent pool throughput (PostgreSQL)", pool.throughput),
    "pool-failover": ("agent pool copy failover (PostgreSQL)", pool.failover),
    "cluster-failover": ("broker node failover (two-node ejabberd, root)", cluster.failover),
    "instruments": ("metrics and tracing on the hot path", instrument_cost),
}


#: Parts that need more than a broker (PostgreSQL, ejabberd): run only when named.
OPT_IN = frozenset({"pool", "pool-failover", "cluster-failover"})


async def run_suite(
    port: int,
    options: Options,
    log_dir: Path,
    echo: Callable[[str], None] = print,
    only: Sequence[str] = (),
) -> list[Figure]:
    """Measure every figure (or those of the parts in ``only``) on ``127.0.0.1:port``.

    The :data:`OPT_IN` parts run only when ``only`` names them.
    """
    run = Run(port, options, log_dir, echo)
    figures: list[Figure] = []
    for name, (title, step) in STEPS.items():
        if (only and name not in only) or (not only and name in OPT_IN):
            continue
        started = time.monotonic()
        echo(f"{title}...")
        result = await step(run)
        figures.extend(result if isinstance(result, list) else [result])
        echo(f"  ({time.monotonic() - started:.1f} s)")
    return figures
