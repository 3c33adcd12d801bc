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
import sys
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mqttpush.agent.base import Agent
from mqttpush.errors import RpcTimeoutError
from mqttpush.fabric import Fabric
from mqttpush.models import PushNotification, TaskPushNotificationConfig
from mqttpush.settings import BrokerSettings, Settings
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.run import median
from mqttpush.tools.pgserver import LocalPostgres

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

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


class _Copy:
    def __init__(self, run: Run, prefix: str, url: str, interval: float, ttl: float) -> None:
        self.log: Path = run.log_dir / f"pool-copy-{uuid.uuid4().hex[:8]}.log"
        self.env = {
            **os.environ,
            "MQTTPUSH_PROFILE": "",
            "MQTTPUSH_TOPIC_PREFIX": prefix,
            "MQTTPUSH_BROKER__PORT": str(run.port),
            "MQTTPUSH_AGENT__POOL": "bench",
            "MQTTPUSH_AGENT__STORE_URL": url,
            "MQTTPUSH_AGENT__LEASE_TTL": str(ttl),
            "MQTTPUSH_DEMO__NOTIFICATION_COUNT": str(_COUNT),
            "MQTTPUSH_DEMO__NOTIFICATION_INTERVAL": str(interval),
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        run_dir = self.log.parent
        run_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mqttpush", "serve", "sender",
                env=self.env, stdout=out, stderr=out,
            )  # fmt: skip
        async with asyncio.timeout(60):
            while b"serving PushSender" not in self.log.read_bytes():
                if self.proc.returncode is not None:
                    raise BenchError(f"pool copy exited: see {self.log}")
                await asyncio.sleep(0.1)

    def owner(self) -> str:
        for line in self.log.read_text().splitlines():
            if "task leases of owner " in line:
                return line.split("task leases of owner ")[1].split(":")[0]
        raise BenchError(f"no lease owner in {self.log}")

    def takeovers(self, owner: str) -> list[float]:
        return [
            datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for line in self.log.read_text().splitlines()
            if f"taken over from {owner} " in line
        ]

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                async with asyncio.timeout(20):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _call(sender: RemoteAgent, method: str, params: dict[str, Any]) -> None:
    for _ in range(6):  # a request a dying copy took is asked again
        try:
            await sender.call(method, params, timeout=10)
        except RpcTimeoutError:
            continue
        return
    raise BenchError(f"{method} never answered")


async def _round(run: Run, url: str, copies: int, *, kill_one: bool = False) -> dict[str, float]:
    """Run the tasks on ``copies`` copies; with ``kill_one``, SIGKILL one halfway."""
    from mqttpush.store.postgres import migrate  # noqa: PLC0415 - the postgres extra

    await migrate(url)
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    interval, ttl = (0.05, _LEASE_TTL) if kill_one else (0.0, 15.0)
    pool = [_Copy(run, prefix, url, interval, ttl) for _ in range(copies)]
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
            done_at = time.monotonic()
            elapsed = done_at - started
            handled = sum(len(r.got) for r in receivers)
            # Every task ended in the store too, so no later round's copies resume it.
            for n in range(_TASKS):
                await _call(sender, "get_task_status", {"task_id": f"{run_id}-{n}", "wait": 30})
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
            result["all_done_s"] = done_at - killed_at
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
            name=f"pool copy failover: {what} -> every task completed, median",
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
