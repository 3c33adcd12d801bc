"""Agent pools measured: push throughput with 1, 2 and 4 sender copies, and a copy's failover.

Each copy is a ``mqttpush serve sender`` process (``agent.pool``) on the run's broker,
sharing the PostgreSQL database that ``MQTTPUSH_BENCH_STORE_URL`` names, or else a
private PostgreSQL server started here (:mod:`mqttpush.tools.pgserver`); the schema is
migrated here. The receivers and the caller share one process. Throughput counts every
notification the receivers handled, from the first ``run_task`` to the last final one.
Every round checks that each task's endpoint got each of its notifications and the
final one (``lost`` counts what is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from typing import TYPE_CHECKING, Any

from mqttpush.agent.base import Agent
from mqttpush.errors import RpcTimeoutError
from mqttpush.fabric import Fabric
from mqttpush.models import PushNotification, TaskPushNotificationConfig, TaskStatus
from mqttpush.settings import BrokerSettings, Settings
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.poolcopy import PoolCopy
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.run import median
from mqttpush.tools.pgserver import LocalPostgres

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mqttpush.rpc.remote import RemoteAgent
    from mqttpush.tools.bench.run import Run

__all__ = ["failover", "throughput"]

_TASKS, _RECEIVERS, _COUNT = 200, 20, 20
_LEASE_TTL = 5.0  # the failover round's; throughput rounds use 15 s (no lapse under load)
_SENDER = "sender@fame.fabric"  # where `mqttpush serve sender` serves by default


class _Receiver(Agent):
    """Counts the notifications it handles; the last ones set ``done``."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[PushNotification] = []
        self.finals = 0
        self.done = asyncio.Event()
        self.expected = 0

    async def on_message(self, notification: PushNotification) -> None:
        self.got.append(notification)
        if notification.state.is_terminal:
            self.finals += 1
            if self.finals >= self.expected:
                self.done.set()


@contextlib.asynccontextmanager
async def _store(run: Run) -> AsyncIterator[str]:
    """``MQTTPUSH_BENCH_STORE_URL``, or a private PostgreSQL server's for the part's time."""
    url = os.environ.get("MQTTPUSH_BENCH_STORE_URL")
    if url:
        yield url
        return
    server = LocalPostgres()
    await asyncio.to_thread(server.__enter__)
    run.echo(f"  a private PostgreSQL on 127.0.0.1:{server.port} (no MQTTPUSH_BENCH_STORE_URL)")
    try:
        yield server.url()
    finally:
        await asyncio.to_thread(server.__exit__)


def _lost(receivers: list[_Receiver], run_id: str) -> int:
    """Notifications some task's endpoint never got (each message, and the final one)."""
    lost = 0
    for n in range(_TASKS):
        got = [g for g in receivers[n % _RECEIVERS].got if g.task_id == f"{run_id}-{n}"]
        messages = {g.message for g in got}
        lost += sum(f"Notification #{i}" not in messages for i in range(1, _COUNT + 1))
        lost += not any(g.state.is_terminal for g in got)
    return lost


async def _call(sender: RemoteAgent, method: str, params: dict[str, Any]) -> Any:  # noqa: ANN401
    for _ in range(6):  # a request a dying copy took is asked again
        try:
            return await sender.call(method, params, timeout=10)
        except RpcTimeoutError:
            continue
    raise BenchError(f"{method} never answered")


async def _ended(sender: RemoteAgent, task_id: str, timeout: float) -> None:
    """Wait until the store holds ``task_id`` as ended (a resumed task's end included)."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await _call(sender, "get_task_status", {"task_id": task_id, "wait": 5})
            if TaskStatus.model_validate(raw).state.is_terminal:
                return


async def _round(run: Run, url: str, copies: int, *, kill_one: bool = False) -> dict[str, float]:
    """Run the tasks on ``copies`` copies; with ``kill_one``, SIGKILL one halfway."""
    from mqttpush.store.postgres import migrate  # noqa: PLC0415 - the postgres extra

    await migrate(url)
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    interval, ttl = (0.05, _LEASE_TTL) if kill_one else (0.0, 15.0)
    pool = [
        PoolCopy(run, prefix, url, interval=interval, ttl=ttl, count=_COUNT) for _ in range(copies)
    ]
    settings = Settings(topic_prefix=prefix, broker=BrokerSettings(port=run.port))
    try:
        await asyncio.gather(*(copy.start() for copy in pool))
        async with Fabric(settings) as fabric:
            receivers = [
                await fabric.serve(_Receiver(), f"r{i:02d}@bench.fabric") for i in range(_RECEIVERS)
            ]
            for i, receiver in enumerate(receivers):
                receiver.expected = len(range(i, _TASKS, _RECEIVERS))
            sender = fabric.remote(_SENDER)
            limit = asyncio.Semaphore(40)
            run_id = uuid.uuid4().hex[:6]

            async def start(n: int) -> None:
                task_id = f"{run_id}-{n}"
                endpoint = TaskPushNotificationConfig(
                    task_id=task_id, address=f"r{n % _RECEIVERS:02d}@bench.fabric"
                )
                async with limit:
                    await _call(sender, "register_push_endpoint", {"config": endpoint})
                    await _call(sender, "run_task", {"task_id": task_id})

            started = time.monotonic()
            starting = [asyncio.create_task(start(n)) for n in range(_TASKS)]
            killed_wall = killed_at = 0.0
            if kill_one:
                await asyncio.wait(starting[: _TASKS // 2])
                await pool[0].stop(signal.SIGKILL)
                killed_at, killed_wall = time.monotonic(), time.time()
            await asyncio.gather(*starting)
            async with asyncio.timeout(run.options.timeout):
                await asyncio.gather(*(r.done.wait() for r in receivers))
            elapsed = time.monotonic() - started
            handled = sum(len(r.got) for r in receivers)
            # Every task ended in the store too (after a kill, the dead copy's tasks run
            # again elsewhere), so no later round's copies resume it.
            for n in range(_TASKS):
                await _ended(sender, f"{run_id}-{n}", run.options.timeout)
            done_at = time.monotonic()
            lost = _lost(receivers, run_id)  # every task ended: each was settled before
        result = {
            "rate": handled / elapsed,
            "handled": float(handled),
            "elapsed": elapsed,
            "lost": float(lost),
            "twice": float(
                sum(len(r.got) - len({(g.task_id, g.seq) for g in r.got}) for r in receivers)
            ),
        }
        if kill_one:
            owner = pool[0].owner()
            taken = [t for copy in pool[1:] for t in copy.takeovers(owner)]
            result["taken_over"] = float(len(taken))
            result["takeover_s"] = max(taken) - killed_wall if taken else float("nan")
            result["first_takeover_s"] = min(taken) - killed_wall if taken else float("nan")
            result["all_done_s"] = done_at - killed_at  # every task ended in the store
        return result
    finally:
        for copy in pool:
            await copy.stop()


async def throughput(run: Run) -> list[Figure]:
    """Push throughput of a pool of 1, 2 and 4 sender copies."""
    figures = []
    async with _store(run) as url:
        for copies in (1, 2, 4):
            result = await _round(run, url, copies)
            run.echo(f"  pool x{copies}: {result['rate']:,.0f} notifications/s, "
                     f"{result['lost']:.0f} lost ({os.cpu_count()} cores)")  # fmt: skip
            figures.append(
                Figure(
                    name=f"pool push throughput, {copies} sender "
                    f"cop{'y' if copies == 1 else 'ies'}, {_TASKS} tasks x {_COUNT + 1} -> "
                    f"{_RECEIVERS} receivers, PostgreSQL store, {os.cpu_count()} cores",
                    unit="notifications/s",
                    value=result["rate"],
                    notes={
                        "handled": int(result["handled"]),
                        "elapsed_s": round(result["elapsed"], 1),
                        "lost": int(result["lost"]),
                        "handled_twice": int(result["twice"]),
                    },
                )
            )
    return figures


async def failover(run: Run) -> list[Figure]:
    """A pool copy killed mid-run, ``repeat`` times: when the others took over its tasks."""
    takeovers, firsts, done, lost, taken = [], [], [], 0, []
    async with _store(run) as url:
        for _ in range(run.options.repeat):
            result = await _round(run, url, 3, kill_one=True)
            takeovers.append(result["takeover_s"])
            firsts.append(round(result["first_takeover_s"], 1))
            done.append(result["all_done_s"])
            lost += int(result["lost"])
            taken.append(int(result["taken_over"]))
            run.echo(f"  pool copy failover: last takeover {result['takeover_s']:.1f} s, every "
                     f"task done {result['all_done_s']:.1f} s after SIGKILL; "
                     f"{result['lost']:.0f} lost ({os.cpu_count()} cores)")  # fmt: skip
    what = f"SIGKILL of 1 of 3 copies (lease {_LEASE_TTL:g} s, {os.cpu_count()} cores)"
    return [
        Figure(
            name=f"pool copy failover: {what} -> its last task taken over, median",
            unit="s",
            value=median(takeovers),
            better="lower",
            runs={"mqttpush": takeovers},
            notes={
                "max_s": round(max(takeovers), 1),
                "first_takeover_s": firsts,
                "taken_over_per_kill": taken,
            },
        ),
        Figure(
            name=f"pool copy failover: {what} -> every task ended in the store, median",
            unit="s",
            value=median(done),
            better="lower",
            runs={"mqttpush": done},
            notes={"max_s": round(max(done), 1)},
        ),
        Figure(
            name="pool copy failover: notifications lost (every kill)",
            unit="count",
            value=float(lost),
            better="lower",
            limit=0,
        ),
    ]
