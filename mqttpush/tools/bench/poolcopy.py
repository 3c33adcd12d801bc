"""A copy of an agent pool for the pool benchmarks: a ``mqttpush serve sender`` process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from mqttpush.tools.bench.procs import BenchError

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.tools.bench.run import Run

__all__ = ["PoolCopy"]


class PoolCopy:
    """One ``mqttpush serve sender`` process of a pool; its log in the run's log folder."""

    def __init__(
        self, run: Run, prefix: str, url: str, *, interval: float, ttl: float, count: int
    ) -> None:
        self.log: Path = run.log_dir / f"pool-copy-{uuid.uuid4().hex[:8]}.log"
        self.env = {
            **os.environ,
            "MQTTPUSH_PROFILE": "",
            "MQTTPUSH_TOPIC_PREFIX": prefix,
            "MQTTPUSH_BROKER__PORT": str(run.port),
            "MQTTPUSH_AGENT__POOL": "bench",
            "MQTTPUSH_AGENT__STORE_URL": url,
            "MQTTPUSH_AGENT__LEASE_TTL": str(ttl),
            "MQTTPUSH_DEMO__NOTIFICATION_COUNT": str(count),
            "MQTTPUSH_DEMO__NOTIFICATION_INTERVAL": str(interval),
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process; return once it serves."""
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
        """The copy's lease owner id, from its log."""
        for line in self.log.read_text().splitlines():
            if "task leases of owner " in line:
                return line.split("task leases of owner ")[1].split(":")[0]
        raise BenchError(f"no lease owner in {self.log}")

    def takeovers(self, owner: str) -> list[float]:
        """When this copy took over a task of ``owner`` (wall clock, from its log)."""
        return [
            datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for line in self.log.read_text().splitlines()
            if f"taken over from {owner} " in line
        ]

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process with ``sig`` (killed if it outlives 20 s)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                async with asyncio.timeout(20):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
