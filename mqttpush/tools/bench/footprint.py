"""Steps that measure processes whole: resident memory, import time, the seed scenario."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.run import (
    REFERENCE_RSS_MB,
    REFERENCE_SEED_OVERHEAD,
    REFERENCE_SEED_WALL,
    median,
)

if TYPE_CHECKING:
    from mqttpush.tools.bench.run import Run

__all__ = ["memory", "seed"]

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


async def _served_agent_rss(run: Run) -> int:
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


async def memory(run: Run) -> list[Figure]:
    """Resident memory of a served agent and import time, beside a bare client's."""
    ours, raws, ours_import, raw_import = [], [], [], []
    for _ in range(run.options.repeat):
        ours.append(await _served_agent_rss(run) / 1024)
        raws.append(int(await asyncio.to_thread(_python, "-c", _RAW_IDLE, str(run.port))) / 1024)
        ours_import.append(await asyncio.to_thread(_import_time, "mqttpush") * 1e3)
        raw_import.append(await asyncio.to_thread(_import_time, "aiomqtt") * 1e3)
    run.echo(f"  memory: agent {median(ours):.1f} MB, raw client {median(raws):.1f} MB")
    return [
        Figure(
            name="resident memory of an agent process (mqttpush serve sender, idle)",
            unit="MB",
            value=median(ours),
            baseline=median(raws),
            baseline_label="a raw aiomqtt client process, connected and subscribed",
            better="lower",
            runs={"mqttpush": ours, "baseline": raws},
            limit=40.0,
            notes={"reference_sdk_mb": REFERENCE_RSS_MB},
        ),
        Figure(
            name="import time of mqttpush",
            unit="ms",
            value=median(ours_import),
            baseline=median(raw_import),
            baseline_label="import aiomqtt",
            better="lower",
            runs={"mqttpush": ours_import, "baseline": raw_import},
        ),
    ]


async def _seed_times(run: Run, interval: float, runs: int) -> list[float]:
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


async def seed(run: Run) -> list[Figure]:
    """The seed scenario's wall time, with no interval and with the seed's 0.2 s."""
    fast = await _seed_times(run, 0.0, run.options.seed_runs)
    run.echo(f"  seed scenario, interval 0: {median(fast):.1f} ms")
    paced = await _seed_times(run, 0.2, max(1, run.options.seed_runs // 2))
    run.echo(f"  seed scenario, interval 0.2 s: {median(paced):.0f} ms")
    return [
        Figure(
            name="seed scenario, interval 0 (client wall time, connect included)",
            unit="ms",
            value=median(fast),
            better="lower",
            runs={"mqttpush": fast},
            notes={"reference_sdk_overhead_ms": REFERENCE_SEED_OVERHEAD * 1e3},
        ),
        Figure(
            name="seed scenario, interval 0.2 s as in the seed (1.6 s of sleeps)",
            unit="ms",
            value=median(paced),
            baseline=REFERENCE_SEED_WALL * 1e3,
            baseline_label="the reference SDK's example, 2.37 s with 1.8 s of sleeps "
            "(published figure, not measured in this run)",
            better="lower",
            runs={"mqttpush": paced},
        ),
    ]
