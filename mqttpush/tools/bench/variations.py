"""Two parts of the bench suite: latency per priority under load, and what a filter costs.

``priority``: several tasks push to one slow endpoint at once, so its delivery window
stays full and pushes wait for room; each notification's latency (made -> handled) is
recorded per priority class. Higher classes should wait less. The sender and the
endpoint run in this process, on two connections to the suite's broker.

``filter``: the sender's per-endpoint work for one notification (filter, then encode),
timed in a loop with no filter, with a filter that passes and one that refuses, in the
same run; no broker involved.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from mqttpush.address import Topics
from mqttpush.agent.background import BackgroundTaskAgent
from mqttpush.agent.base import Agent
from mqttpush.agent.fanout import fan_out
from mqttpush.fabric import Fabric
from mqttpush.models import Priority, PushNotification, TaskPushNotificationConfig, TaskState
from mqttpush.models import utc_now as _now
from mqttpush.settings import Settings
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.run import median
from mqttpush.tools.demo.client import wait_for_task

if TYPE_CHECKING:
    from mqttpush.agent.context import TaskContext
    from mqttpush.tools.bench.run import Run

__all__ = ["filter_cost", "priority_latency"]

_ENDPOINT = "slow@bench.fabric"
_SENDER = "mixed@bench.fabric"
_WINDOW = 5  # the endpoint's delivery window in this part: small, so it fills


def priority_of(i: int) -> Priority:
    """The class of a task's ``i``-th push: 5 % urgent, 10 % high, 20 % low, the rest normal.

    None of the special classes comes first: every task starts at the same moment, and
    the first pushes find the window empty whatever their class.
    """
    if i % 20 == 7:  # noqa: PLR2004 - 7, 27, ...
        return Priority.URGENT
    if i % 10 == 3:  # noqa: PLR2004 - 3, 13, ...
        return Priority.HIGH
    if i % 4 == 1:
        return Priority.LOW
    return Priority.NORMAL


class _Mixed(BackgroundTaskAgent):
    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    async def run_background_task(self, task: TaskContext) -> None:
        for i in range(self.count):
            await task.push("n", None, priority=priority_of(i))


class _Slow(Agent):
    """Handles one notification at a time, each taking ``delay``: the window fills."""

    def __init__(self, delay: float) -> None:
        super().__init__(max_concurrency=1)
        self.delay = delay
        self.latency: dict[Priority, list[float]] = {p: [] for p in Priority}

    async def on_message(self, notification: PushNotification) -> None:
        if notification.state is TaskState.WORKING:
            waited = (_now() - notification.timestamp).total_seconds()
            self.latency[notification.priority].append(waited)
        await asyncio.sleep(self.delay)


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(pct * len(ordered)))] if ordered else 0.0


async def _one_priority_run(run: Run, tasks: int, count: int) -> dict[Priority, list[float]]:
    settings = Settings.load(
        None,
        topic_prefix=f"bench/{uuid.uuid4().hex[:8]}",
        broker={"port": run.port},
        agent={"delivery_window": _WINDOW, "presence": False},
    )
    async with Fabric(settings) as sending, Fabric(settings) as receiving:
        await sending.serve(_Mixed(count), _SENDER)
        slow = await receiving.serve(_Slow(delay=0.0005), _ENDPOINT)
        sender = receiving.remote(_SENDER)
        ids = [f"p{i}" for i in range(tasks)]
        for task_id in ids:
            await sender.register_push_endpoint(config={"task_id": task_id, "address": _ENDPOINT})
        await asyncio.gather(*(sender.run_task(task_id=t) for t in ids))
        for task_id in ids:
            await wait_for_task(receiving, _SENDER, task_id, timeout=run.options.timeout)
        async with asyncio.timeout(run.options.timeout):
            while sum(map(len, slow.latency.values())) < tasks * count:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return slow.latency


async def priority_latency(run: Run) -> list[Figure]:
    """Latency (made -> handled) per priority class, one full-window endpoint, p50 and p95."""
    quick = run.options.push_count < 1_000  # noqa: PLR2004 - the quick options' scale
    tasks, count = (8, 20) if quick else (40, 100)
    runs: dict[Priority, list[dict[str, float]]] = {p: [] for p in Priority}
    for _ in range(run.options.repeat):
        latency = await _one_priority_run(run, tasks, count)
        for priority, values in latency.items():
            p50, p95 = _percentile(values, 0.5) * 1e3, _percentile(values, 0.95) * 1e3
            runs[priority].append({"p50": p50, "p95": p95, "n": len(values)})
        run.echo("  priority p50 ms: " + ", ".join(
            f"{p.value} {runs[p][-1]['p50']:.1f}" for p in reversed(Priority)))  # fmt: skip
    notes: dict[str, Any] = {
        "tasks": tasks, "pushes_per_task": count, "window": _WINDOW,
        "endpoint": "one, handling one notification at a time, 0.5 ms each",
    }  # fmt: skip
    return [
        Figure(
            name=f"priority latency under a full window, {p.value}, p50",
            unit="ms",
            value=median([r["p50"] for r in runs[p]]),
            better="lower",
            runs={"mqttpush": [r["p50"] for r in runs[p]]},
            notes={
                **notes,
                "p95_ms": median([r["p95"] for r in runs[p]]),
                "notifications": int(median([r["n"] for r in runs[p]])),
            },
        )
        for p in reversed(Priority)
    ]


_NOTE = PushNotification(task_id="t", seq=1, message="Notification #1",
                         data={"n": 1, "parity": "odd"})  # fmt: skip


def _time_fan_out(config: TaskPushNotificationConfig, loops: int) -> float:
    topics = Topics("bench")
    endpoints = [config]
    started = time.perf_counter()
    for _ in range(loops):
        fan_out(_NOTE, endpoints, sender="s@bench.fabric", trace_id=None, topics=topics)
    return (time.perf_counter() - started) / loops


def _time_match(config: TaskPushNotificationConfig, loops: int) -> float:
    check = config.filter
    assert check is not None  # noqa: S101 - built with one just above
    started = time.perf_counter()
    for _ in range(loops):
        check.matches(_NOTE)
    return (time.perf_counter() - started) / loops


async def filter_cost(run: Run) -> list[Figure]:
    """The sender's work per notification and endpoint, without and with a filter.

    The three cases alternate in short chunks, so a machine that gets busier affects
    them alike; the filter's own check (``matches``) is also timed alone.
    """
    chunk, chunks = (200, 10) if run.options.push_count < 1_000 else (500, 60)  # noqa: PLR2004
    plain = TaskPushNotificationConfig(task_id="t", address="r@bench.fabric")
    spec = {"states": ["working"], "min_priority": "low", "data": {"parity": "odd"}}
    passing = TaskPushNotificationConfig.model_validate({**plain.model_dump(), "filter": spec})
    refusing = TaskPushNotificationConfig.model_validate(
        {**plain.model_dump(), "filter": {"data": {"parity": "even"}}}
    )
    without, with_filter, refused, check = [], [], [], []
    for _ in range(chunks):
        without.append(_time_fan_out(plain, chunk) * 1e6)
        with_filter.append(_time_fan_out(passing, chunk) * 1e6)
        refused.append(_time_fan_out(refusing, chunk) * 1e6)
        check.append(_time_match(passing, chunk * 10) * 1e6)
        await asyncio.sleep(0)
    run.echo(f"  per notification and endpoint: {median(without):.2f} us without a filter, "
             f"{median(with_filter):.2f} us with one, {median(refused):.2f} us when it "
             f"refuses; the check alone {median(check):.3f} us")  # fmt: skip
    return [
        Figure(
            name="sender work per notification and endpoint, with a 3-criteria filter",
            unit="us",
            value=median(with_filter),
            baseline=median(without),
            baseline_label="the same without a filter",
            better="lower",
            runs={"mqttpush": with_filter, "baseline": without},
            notes={
                "filter": spec,
                "check_alone_us": round(median(check), 3),
                "refused_us": round(median(refused), 3),
                "chunks": chunks,
                "loops_per_chunk": chunk,
            },
        ),
        Figure(
            name="filter check alone (3 criteria, passing), per notification and endpoint",
            unit="us",
            value=median(check),
            better="lower",
            runs={"mqttpush": check},
        ),
    ]
