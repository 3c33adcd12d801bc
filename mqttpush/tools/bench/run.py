"""What every benchmark step shares: the options, one run's state, the reference figures."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mqttpush.tools.bench.procs import Worker

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["PING", "RECEIVER", "SENDER", "Options", "Run", "median"]

#: Reference SDK figures measured on a machine like this one (docs/benchmarks.md).
REFERENCE_PUSH_RATE = 2_150.0
REFERENCE_RSS_MB = 70.0
REFERENCE_SEED_WALL = 2.37  # seconds, with nine 0.2 s sleeps (eight here: none before #1)
REFERENCE_SEED_OVERHEAD = 0.57  # seconds: its wall time minus its 1.8 s of sleeps

SENDER = "bench-sender@bench.fabric"
RECEIVER = "bench-receiver@bench.fabric"
PING = "bench-ping@bench.fabric"


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
        cpu_rounds: Rounds of the CPU-per-notification runs (instruments off and on).
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
    cpu_rounds: int = 5
    timeout: float = 120.0

    @classmethod
    def quick(cls) -> Options:
        """A few seconds' worth of everything: checks the suite works, measures little."""
        return cls(
            repeat=1, push_count=500, rpc_calls=200, scale_receivers=4, scale_tasks=3,
            scale_count=5, scale_processes=2, scale_rounds=2, seed_runs=1, cpu_rounds=1,
            timeout=60.0,
        )  # fmt: skip


class Run:
    """Shared state of one suite run: the broker port, the log folder, the options."""

    def __init__(
        self, port: int, options: Options, log_dir: Path, echo: Callable[[str], None]
    ) -> None:
        self.port = port
        self.options = options
        self.log_dir = log_dir
        self.echo = echo

    def worker(self, role: str, **args: Any) -> Worker:  # noqa: ANN401 - the role's arguments
        """A worker process for ``role`` on this run's broker, with a fresh topic prefix."""
        args.setdefault("port", self.port)
        args.setdefault("prefix", f"bench/{uuid.uuid4().hex[:8]}")
        args.setdefault("timeout", self.options.timeout)
        return Worker(role, args, self.log_dir)

    async def push_pair(self) -> tuple[float, float, dict[str, Any]]:
        """Push throughput, raw then mqttpush: the two rates and mqttpush's result."""
        o = self.options
        topic = f"raw/{uuid.uuid4().hex[:8]}/push"
        async with self.worker("raw-subscriber", topic=topic, count=o.push_count) as sub:
            async with self.worker(
                "raw-publisher", topic=topic, count=o.push_count, window=o.window, size=o.payload
            ) as pub:
                await pub.result(o.timeout)
            raw = await sub.result(o.timeout)
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        async with self.worker("push-sender", prefix=prefix, address=SENDER):
            receiver = self.worker(
                "push-receiver", prefix=prefix, address=RECEIVER, sender=SENDER,
                count=o.push_count,
            )  # fmt: skip
            async with receiver:
                ours = await receiver.result(o.timeout)
        return raw["rate"], ours["rate"], ours

    async def rpc_pair(self, concurrency: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """RPC calls, raw then mqttpush, ``concurrency`` at once: both results."""
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
            self.worker("ping-server", prefix=prefix, address=PING),
            self.worker("rpc-caller", prefix=prefix, target=PING, **calls) as caller,
        ):
            ours = await caller.result(o.timeout)
        return raw, ours


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)
