"""What every benchmark role uses: readiness and stop signals, memory figures, timed calls.

A role is an ``async def role(args) -> dict`` that calls :func:`ready` once it can take
traffic and returns its result (or serves until SIGTERM); see :mod:`.worker`.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = [
    "drive_calls",
    "latencies",
    "peak_rss_kb",
    "ready",
    "report",
    "rss_kb",
    "until_stopped",
    "wait_for_go",
]


def ready() -> None:
    """Tell the parent this worker can take traffic."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()


async def wait_for_go() -> str:
    """Wait for the parent's start signal (a line on stdin); the line, stripped."""
    line: str = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.strip()


def report(result: dict[str, Any]) -> None:
    """Send the parent one result now (a worker that reports more than once)."""
    sys.stdout.write(f"RESULT {json.dumps(result)}\n")
    sys.stdout.flush()


async def until_stopped() -> None:
    """Wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def rss_kb() -> int:
    """This process's resident memory now, in KiB (Linux ``/proc``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_rss_kb() -> int:
    """This process's peak resident memory so far, in KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def drive_calls(
    call: Callable[[int], Coroutine[Any, Any, float]],
    route: Callable[[], Coroutine[Any, Any, None]] | None,
    calls: int,
    concurrency: int,
    args: dict[str, Any],
) -> dict[str, Any]:
    """Warm up, then make ``calls`` calls, ``concurrency`` at once, and time them.

    ``route`` (when given) runs beside the calls, e.g. to resolve replies.
    Returns the calls per second and the p50/p90/p99 latencies in seconds.
    """
    router = asyncio.create_task(route()) if route is not None else None
    ready()
    try:
        async with asyncio.timeout(args["timeout"]):
            for i in range(args["warmup"]):
                await call(-1 - i)
            samples: list[float] = []
            numbers = iter(range(calls))

            async def lane() -> None:
                for i in numbers:
                    samples.append(await call(i))  # noqa: PERF401 - one await at a time

            start = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for _ in range(concurrency):
                    group.create_task(lane())
            elapsed = time.perf_counter() - start
    finally:
        if router is not None:
            router.cancel()
    return latencies(samples, elapsed)


def latencies(samples: list[float], elapsed: float) -> dict[str, Any]:
    """Calls per second over ``elapsed`` and the p50/p90/p99 of ``samples`` (seconds)."""
    samples = sorted(samples)
    return {
        "rate": len(samples) / elapsed,
        "p50": statistics.median(samples),
        "p90": samples[int(len(samples) * 0.9)],
        "p99": samples[int(len(samples) * 0.99)],
    }
