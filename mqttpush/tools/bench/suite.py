"""The benchmark suite: each figure measured beside its raw baseline, in the same run.

Every figure is the median of ``repeat`` runs, and each run measures the baseline and
mqttpush back to back, so a machine that gets busier affects both alike. Every process
(broker, senders, receivers, callers) is separate, as in a deployment.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqttpush.fabric import Fabric
from mqttpush.settings import Settings
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.procs import BenchError, Worker

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ["STEPS", "Options", "run_suite"]

#: Reference SDK figures measured on a machine like this one (docs/benchmarks.md).
REFERENCE_PUSH_RATE = 2_150.0
REFERENCE_RSS_MB = 70.0
REFERENCE_SEED_WALL = 2.37  # seconds, with nine 0.2 s sleeps (eight here: none before #1)
REFERENCE_SEED_OVERHEAD = 0.57  # seconds: its wall time minus its 1.8 s of sleeps

_SENDER = "bench-sender@bench.fabric"
_RECEIVER = "bench-receiver@bench.fabric"
_PING = "bench-ping@bench.fabric"


@dataclass(frozen=True)
class Options:
    """How much work each figure does.

    Attributes:
        repeat: Runs per figure (the median is reported).
        push_count: Notifications in the push throughput run.
        payload: Bytes of the raw baseline's payload (about a notification's).
        window: In-flight window of the raw publisher (mqttpush's delivery window).
        rpc_calls: Calls in each RPC run.
        concurrency: Callers at once in the concurrent RPC run.
        scale_receivers: Receiver agents at the scale point.
        scale_tasks: Tasks each receiver runs at once.
        scale_count: Notifications per task at the scale point.
        scale_processes: Processes the receivers are spread over.
        scale_rounds: Rounds at the scale point, on the same sender (memory flatness).
        seed_runs: Runs of the seed scenario.
        timeout: Longest any single worker may take, in seconds.
    """

    repeat: int = 3
    push_count: int = 20_000
    payload: int = 200
    window: int = 100
    rpc_calls: int = 3_000
    concurrency: int = 64
    scale_receivers: int = 100
    scale_tasks: int = 10
    scale_count: int = 10
    scale_processes: int = 4
    scale_rounds: int = 5
    seed_runs: int = 5
    timeout: float = 120.0

    @classmethod
    def quick(cls) -> Options:
        """A few seconds' worth of everything: checks the suite works, measures little."""
        return cls(
            repeat=1, push_count=500, rpc_calls=200, scale_receivers=4, scale_tasks=3,
            scale_count=5, scale_processes=2, scale_rounds=2, seed_runs=1, timeout=60.0,
        )  # fmt: skip


class _Run:
    """Shared state of one suite run: the broker port, the log folder, the options."""

    def __init__(
        self, port: int, options: Options, log_dir: Path, echo: Callable[[str], None]
    ) -> None:
        self.port = port
        self.options = options
        self.log_dir = log_dir
        self.echo = echo

    def worker(self, role: str, **args: Any) -> Worker:  # noqa: ANN401 - the role's arguments
        args.setdefault("port", self.port)
        args.setdefault("prefix", f"bench/{uuid.uuid4().hex[:8]}")
        args.setdefault("timeout", self.options.timeout)
        return Worker(role, args, self.log_dir)

    async def push_pair(self) -> tuple[float, float, dict[str, Any]]:
        o = self.options
        topic = f"raw/{uuid.uuid4().hex[:8]}/push"
        async with self.worker("raw-subscriber", topic=topic, count=o.push_count) as sub:
            async with self.worker(
                "raw-publisher", topic=topic, count=o.push_count, window=o.window, size=o.payload
            ) as pub:
                await pub.result(o.timeout)
            raw = await sub.result(o.timeout)
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        async with self.worker("push-sender", prefix=prefix, address=_SENDER):
            receiver = self.worker(
                "push-receiver", prefix=prefix, address=_RECEIVER, sender=_SENDER,
                count=o.push_count,
            )  # fmt: skip
            async with receiver:
                ours = await receiver.result(o.timeout)
        return raw["rate"], ours["rate"], ours

    async def rpc_pair(self, concurrency: int) -> tuple[dict[str, Any], dict[str, Any]]:
        o = self.options
        calls = {"calls": o.rpc_calls, "concurrency": concurrency, "warmup": min(200, o.rpc_calls)}
        topic = f"raw/{uuid.uuid4().hex[:8]}/rpc"
        async with (
            self.worker("raw-responder", topic=topic),
            self.worker("raw-caller", topic=topic, **calls) as caller,
        ):
            raw = await caller.result(o.timeout)
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        async with (
            self.worker("ping-server", prefix=prefix, address=_PING),
            self.worker("rpc-caller", prefix=prefix, target=_PING, **calls) as caller,
        ):
            ours = await caller.result(o.timeout)
        return raw, ours


def _median(values: list[float]) -> float:
    return statistics.median(values)


async def _push_throughput(run: _Run) -> Figure:
    raws, ours, notes = [], [], dict[str, Any]()
    for _ in range(run.options.repeat):
        raw, value, detail = await run.push_pair()
        raws.append(raw)
        ours.append(value)
        for key in ("lost", "double_handled", "duplicates_dropped"):
            notes[key] = notes.get(key, 0) + detail[key]
        run.echo(f"  push: raw {raw:,.0f}/s, mqttpush {value:,.0f}/s")
    notes["vs_reference_sdk"] = round(_median(ours) / REFERENCE_PUSH_RATE, 2)
    return Figure(
        name="push throughput, 1 sender -> 1 receiver, QoS 1, dedup + receipts",
        unit="notifications/s",
        value=_median(ours),
        baseline=_median(raws),
        baseline_label="raw aiomqtt publisher -> subscriber, QoS 1",
        target=0.9,
        limit=5 * REFERENCE_PUSH_RATE,
        runs={"mqttpush": ours, "baseline": raws},
        notes=notes,
    )


async def _rpc(run: _Run) -> list[Figure]:
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
                value=_median(ours_ms),
                baseline=_median(raw_ms),
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
            value=_median(ours_rate),
            baseline=_median(raw_rate),
            baseline_label="raw aiomqtt, same callers on one client",
            target=0.8,
            runs={"mqttpush": ours_rate, "baseline": raw_rate},
        )
    )
    return figures


async def _scale(run: _Run) -> list[Figure]:
    o = run.options
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    keep = o.scale_receivers * o.scale_tasks  # one round's tasks: later rounds replace them
    sender = run.worker("push-sender", prefix=prefix, address=_SENDER, max_finished=keep)
    elapsed, memory, totals = [], [], {"lost": 0, "double_handled": 0, "duplicates_dropped": 0}
    receiver_peak = 0
    settings = Settings.load(None, topic_prefix=prefix, broker={"port": run.port})
    async with sender, Fabric(settings) as fabric:
        for round_no in range(o.scale_rounds):
            per_process = -(-o.scale_receivers // o.scale_processes)
            names = [f"r{round_no}-{i}@bench.fabric" for i in range(o.scale_receivers)]
            workers = [
                run.worker(
                    "scale-receivers", prefix=prefix, sender=_SENDER,
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
            mem = await fabric.remote(_SENDER).memory()
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
            value=_median(elapsed),
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


_RAW_IDLE = """
import asyncio, resource, socket, sys
import aiomqtt
async def main():
    opts = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
    async with aiomqtt.Client("127.0.0.1", int(sys.argv[1]), protocol=aiomqtt.ProtocolVersion.V5,
                              socket_options=opts) as client:
        await client.subscribe("raw/idle/#", qos=1)
        await asyncio.sleep(0.5)
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                print(line.split()[1])
asyncio.run(main())
"""


def _python(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def _import_time(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return float(_python("-c", code))


async def _served_agent_rss(run: _Run) -> int:
    """Resident KiB of ``mqttpush serve sender``, the agent process users run, once serving."""
    env = {
        **os.environ,
        "MQTTPUSH_BROKER__PORT": str(run.port),
        "MQTTPUSH_TOPIC_PREFIX": f"bench/{uuid.uuid4().hex[:8]}",
        "MQTTPUSH_BROKER__CLIENT_ID": f"bench-{uuid.uuid4().hex[:8]}",
    }
    env.pop("MQTTPUSH_PROFILE", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mqttpush", "serve", "sender",
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None  # noqa: S101 - piped above
    try:
        async with asyncio.timeout(run.options.timeout):
            while b"serving PushSender" not in await proc.stderr.readline():
                if proc.returncode is not None:
                    raise BenchError(f"mqttpush serve sender exited with {proc.returncode}")
            await asyncio.sleep(0.5)  # settled: connected, subscribed, idle
            status = Path(f"/proc/{proc.pid}/status").read_text()  # noqa: ASYNC240 - procfs, no disk
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


async def _memory(run: _Run) -> list[Figure]:
    ours, raws, ours_import, raw_import = [], [], [], []
    for _ in range(run.options.repeat):
        ours.append(await _served_agent_rss(run) / 1024)
        raws.append(int(await asyncio.to_thread(_python, "-c", _RAW_IDLE, str(run.port))) / 1024)
        ours_import.append(await asyncio.to_thread(_import_time, "mqttpush") * 1e3)
        raw_import.append(await asyncio.to_thread(_import_time, "aiomqtt") * 1e3)
    run.echo(f"  memory: agent {_median(ours):.1f} MB, raw client {_median(raws):.1f} MB")
    return [
        Figure(
            name="resident memory of an agent process (mqttpush serve sender, idle)",
            unit="MB",
            value=_median(ours),
            baseline=_median(raws),
            baseline_label="a raw aiomqtt client process, connected and subscribed",
            better="lower",
            runs={"mqttpush": ours, "baseline": raws},
            limit=40.0,
            notes={"reference_sdk_mb": REFERENCE_RSS_MB},
        ),
        Figure(
            name="import time of mqttpush",
            unit="ms",
            value=_median(ours_import),
            baseline=_median(raw_import),
            baseline_label="import aiomqtt",
            better="lower",
            runs={"mqttpush": ours_import, "baseline": raw_import},
        ),
    ]


async def _seed_times(run: _Run, interval: float, runs: int) -> list[float]:
    """Wall times (ms) of ``runs`` runs of the seed scenario, agents in their own processes."""
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    async with (
        run.worker("demo-agent", prefix=prefix, which="sender", interval=interval),
        run.worker("demo-agent", prefix=prefix, which="receiver"),
        run.worker("seed-client", prefix=prefix, runs=runs) as client,
    ):
        result = await client.result(run.options.timeout)
    if "error" in result:
        raise BenchError(f"seed scenario: {result['error']}")
    return [t * 1e3 for t in result["times"]]


async def _seed(run: _Run) -> list[Figure]:
    fast = await _seed_times(run, 0.0, run.options.seed_runs)
    run.echo(f"  seed scenario, interval 0: {_median(fast):.1f} ms")
    paced = await _seed_times(run, 0.2, max(1, run.options.seed_runs // 2))
    run.echo(f"  seed scenario, interval 0.2 s: {_median(paced):.0f} ms")
    return [
        Figure(
            name="seed scenario, interval 0 (client wall time, connect included)",
            unit="ms",
            value=_median(fast),
            better="lower",
            runs={"mqttpush": fast},
            notes={"reference_sdk_overhead_ms": REFERENCE_SEED_OVERHEAD * 1e3},
        ),
        Figure(
            name="seed scenario, interval 0.2 s as in the seed (1.6 s of sleeps)",
            unit="ms",
            value=_median(paced),
            baseline=REFERENCE_SEED_WALL * 1e3,
            baseline_label="the reference SDK's example, 2.37 s with 1.8 s of sleeps "
            "(published figure, not measured in this run)",
            better="lower",
            runs={"mqttpush": paced},
        ),
    ]


#: The suite's parts, by the name ``--only`` takes.
STEPS: dict[str, tuple[str, Callable[[_Run], Awaitable[Figure | list[Figure]]]]] = {
    "push": ("push throughput", _push_throughput),
    "rpc": ("RPC", _rpc),
    "scale": ("scale", _scale),
    "memory": ("memory and import time", _memory),
    "seed": ("seed scenario", _seed),
}


async def run_suite(
    port: int,
    options: Options,
    log_dir: Path,
    echo: Callable[[str], None] = print,
    only: Sequence[str] = (),
) -> list[Figure]:
    """Measure every figure (or those of the parts in ``only``) on ``127.0.0.1:port``."""
    run = _Run(port, options, log_dir, echo)
    figures: list[Figure] = []
    for name, (title, step) in STEPS.items():
        if only and name not in only:
            continue
        started = time.monotonic()
        echo(f"{title}...")
        result = await step(run)
        figures.extend(result if isinstance(result, list) else [result])
        echo(f"  ({time.monotonic() - started:.1f} s)")
    return figures
