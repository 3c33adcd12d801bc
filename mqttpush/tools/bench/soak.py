"""The soak mode (``mqttpush bench --soak``): repeated long runs, memory after each, idle CPU.

One sender process (the push-sender worker: a fabric serving one agent, as ``mqttpush
serve sender`` runs) and one receiver process (one agent, as ``mqttpush serve
receiver``) stay up for ``soak_rounds`` rounds of ``soak_count`` notifications each
(``soak_tasks`` tasks at once). After each round the resident memory (VmRSS) of both
is read from ``/proc``; the target is round N within +10% of round 1 (round 1 is the
warm-up). After the last round both sit idle for ``soak_idle`` seconds and their CPU
time over that span is reported, in CPU seconds per second.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.run import RECEIVER, SENDER
from mqttpush.tools.bench.scale import arrivals
from mqttpush.tools.bench.tally import merge

if TYPE_CHECKING:
    from mqttpush.tools.bench.procs import Worker
    from mqttpush.tools.bench.run import Run

__all__ = ["soak"]

_SETTLE = 1.0  # seconds after the last round before idle CPU is sampled


async def _idle_cpu(workers: list[Worker], seconds: float) -> list[float]:
    await asyncio.sleep(_SETTLE)
    before, started = [w.cpu_seconds() for w in workers], time.monotonic()
    await asyncio.sleep(seconds)
    span = time.monotonic() - started
    return [(w.cpu_seconds() - b) / span for w, b in zip(workers, before, strict=True)]


async def soak(run: Run) -> list[Figure]:
    """Rounds on the same two processes: RSS after each, arrivals, then idle CPU."""
    o = run.options
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    timeout = max(o.timeout, o.soak_count / 200)  # a round at 200 notifications/s at worst
    rss: dict[str, list[float]] = {"sender": [], "receiver": []}
    rates, rounds = [], []
    async with (
        run.worker("push-sender", prefix=prefix, address=SENDER) as sender,
        run.worker(
            "soak-receiver", prefix=prefix, address=RECEIVER, sender=SENDER,
            tasks=o.soak_tasks, count=o.soak_count, timeout=timeout,
        ) as receiver,
    ):  # fmt: skip
        for round_no in range(o.soak_rounds):
            receiver.go()
            result = await receiver.result(timeout * 1.5)
            rounds.append(result)
            rss["sender"].append(sender.rss_kb() / 1024)
            rss["receiver"].append(receiver.rss_kb() / 1024)
            rates.append(result["handled"] / max(result["elapsed"], 1e-9))
            run.echo(f"  soak round {round_no + 1}: {rates[-1]:,.0f} notifications/s, "
                     f"RSS sender {rss['sender'][-1]:.1f} MB, receiver "
                     f"{rss['receiver'][-1]:.1f} MB, lost {result['lost']}, "
                     f"late {result['late']}")  # fmt: skip
        idle = await _idle_cpu([sender, receiver], o.soak_idle)
        receiver.go("STOP")
    run.echo(f"  idle CPU: sender {idle[0]:.4f}, receiver {idle[1]:.4f} CPU s/s")
    total = merge(rounds)
    notes: dict[str, Any] = {
        **arrivals(total),
        "rounds": o.soak_rounds,
        "notifications_per_round": o.soak_tasks * (o.soak_count // o.soak_tasks + 1),
        "tasks_per_round": o.soak_tasks,
        "notifications_per_s_each_round": [round(r) for r in rates],
        "sender_rss_mb_each_round": [round(m, 1) for m in rss["sender"]],
        "receiver_rss_mb_each_round": [round(m, 1) for m in rss["receiver"]],
    }
    last = o.soak_rounds
    figures = [
        Figure(
            name=f"soak: {who} RSS after round {last} (vs round 1)",
            unit="MB",
            value=rss[who][-1],
            baseline=rss[who][0],
            baseline_label=f"the {who}'s RSS after round 1 (warm-up), same processes",
            better="lower",
            target=1.10,
            runs={who: rss[who]},
            notes=notes if who == "sender" else {},
        )
        for who in ("sender", "receiver")
    ]
    figures.append(Figure(
        name="soak: notifications lost + handled twice (all rounds)", unit="count",
        value=float(total["lost"] + total["double_handled"]), better="lower", limit=0,
    ))  # fmt: skip
    figures += [
        Figure(
            name=f"soak: idle CPU of the {who} after the rounds ({o.soak_idle:g} s)",
            unit="CPU s/s",
            value=value,
            better="lower",
            limit=0.01,
        )
        for who, value in zip(("sender", "receiver"), idle, strict=True)
    ]
    return figures
