"""The ceiling: Mosquitto's own C clients, ``mosquitto_pub`` -> ``mosquitto_sub``, QoS 1.

One worker runs both and times them: ``mosquitto_sub -C N+1 -q 1`` on the topic and a
readiness topic that holds one retained message (so the first line it writes says it
is subscribed), then ``mosquitto_pub -l -q 1 -M window`` fed N payload lines from a
file. The rate is N over the time from starting the publisher to the subscriber's exit
(the publisher's connect included); each end's CPU time is its own, from ``wait4``.
Throughput only: there is no request/response mode in these clients.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from mqttpush.tools.bench.harness import ready
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.rawkit import payload

__all__ = ["ROLES"]


def _common(port: int) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1"]


def _retain(port: int, topic: str, *message: str) -> None:
    subprocess.run(  # noqa: S603 - fixed program, our own arguments
        ["mosquitto_pub", *_common(port), "-t", topic, "-r", *message],  # noqa: S607
        check=True, timeout=30, capture_output=True,
    )  # fmt: skip


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, float, float]:
    """Wait for ``proc``: exit status, when it was seen to exit, its CPU seconds."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.monotonic(), usage.ru_utime + usage.ru_stime


async def _pair(args: dict[str, Any], work: Path) -> dict[str, Any]:
    port, count, topic = args["port"], args["count"], args["topic"]
    ready_topic = f"{topic}/ready"
    lines = work / "lines"
    lines.write_bytes((payload(args["size"]) + b"\n") * count)
    out = work / "out"
    await asyncio.to_thread(_retain, port, ready_topic, "-m", "ready")
    with out.open("wb") as sink:
        sub = subprocess.Popen(  # noqa: S603, ASYNC220 - reaped by wait4 below
            ["mosquitto_sub", *_common(port), "-t", topic, "-t", ready_topic,  # noqa: S607
             "-C", str(count + 1)],
            stdout=sink, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    reaping = asyncio.create_task(asyncio.to_thread(_reap, sub))
    async with asyncio.timeout(args["timeout"]):
        while out.stat().st_size == 0:
            if reaping.done():
                raise BenchError(f"mosquitto_sub exited with {reaping.result()[0]}")
            await asyncio.sleep(0.01)
    ready()
    with lines.open("rb") as feed:
        started = time.monotonic()
        pub = subprocess.Popen(  # noqa: S603, ASYNC220 - reaped by wait4 below
            ["mosquitto_pub", *_common(port), "-t", topic, "-l",  # noqa: S607
             "-M", str(args["window"])],
            stdin=feed, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        async with asyncio.timeout(args["timeout"]):
            pub_code, _, pub_cpu = await asyncio.to_thread(_reap, pub)
            sub_code, ended, sub_cpu = await reaping
    finally:
        for proc in (pub, sub):
            if proc.returncode is None:
                proc.kill()
        await asyncio.to_thread(_retain, port, ready_topic, "-n")
    if pub_code or sub_code:
        raise BenchError(f"mosquitto_pub exited with {pub_code}, mosquitto_sub with {sub_code}")
    return {"rate": count / (ended - started), "pub_cpu": pub_cpu, "sub_cpu": sub_cpu}


async def raw_pair(args: dict[str, Any]) -> dict[str, Any]:
    """``count`` QoS 1 messages from mosquitto_pub to mosquitto_sub: rate, CPU of each end."""
    with tempfile.TemporaryDirectory(prefix="mqttpush-bench-") as work:
        return await _pair(args, Path(work))


ROLES = {"raw-mosquitto-pair": raw_pair}
