"""What every benchmark step shares: the options, one run's state, the reference figures."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from mqttpush.errors import ConfigurationError
from mqttpush.tools.bench.procs import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

__all__ = ["PING", "RECEIVER", "SENDER", "Options", "Run", "median", "percentile"]

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
    """How much work each figure does (``mqttpush bench --set NAME=VALUE`` changes one).

    Attributes:
        repeat: Runs per figure (the median is reported).
        push_count: Messages in each push throughput run (mqttpush and every raw client).
        payload: Bytes of the raw baselines' payload (about a notification's).
        window: In-flight window of the raw publishers (mqttpush's delivery window).
        clients: The raw baselines measured: ``native`` (mqttpush's transport, the
            primary), ``paho``, ``gmqtt``, ``aiomqtt``, ``mosquitto`` (C, throughput only).
        rpc_calls: Calls in each RPC run.
        concurrency: Callers at once in the concurrent RPC run.
        scale_receivers: Receiver agents at the scale point.
        scale_tasks: Tasks each receiver runs at once.
        scale_count: Notifications per task at the scale point.
        scale_processes: Processes the receivers are spread over.
        scale_rounds: Rounds at the scale point, on the same sender (memory flatness).
        drain: Seconds receivers keep counting after the last final notification, so
            a late notification counts as late, not lost.
        shape_points: Endpoint counts of the scale shape series.
        shape_total: Notifications at each shape point, spread evenly over its
            endpoints (one task each; the final notifications come on top).
        overload_endpoints: Endpoints of the overload mode (``--overload``).
        overload_count: Notifications per endpoint there (the final one comes on top).
        overload_callers: Concurrent RPC callers during the overload burst.
        soak_rounds: Rounds of the soak mode (``--soak``).
        soak_count: Notifications per soak round.
        soak_tasks: Tasks per soak round (``soak_count`` is spread over them).
        soak_idle: Seconds of idle CPU sampled after the soak rounds.
        seed_runs: Runs of the seed scenario.
        cpu_rounds: Rounds of the CPU-per-notification runs (instruments off and on).
        timeout: Longest any single worker may take, in seconds (soak rounds get more).
    """

    repeat: int = 3
    push_count: int = 50_000
    payload: int = 200
    window: int = 100
    clients: tuple[str, ...] = ("native", "paho", "gmqtt", "aiomqtt", "mosquitto")
    rpc_calls: int = 3_000
    concurrency: int = 64
    scale_receivers: int = 100
    scale_tasks: int = 10
    scale_count: int = 10
    scale_processes: int = 4
    scale_rounds: int = 5
    drain: float = 2.0
    shape_points: tuple[int, ...] = (1, 10, 100, 1_000)
    shape_total: int = 20_000
    overload_endpoints: int = 1_000
    overload_count: int = 100
    overload_callers: int = 4
    soak_rounds: int = 10
    soak_count: int = 200_000
    soak_tasks: int = 20
    soak_idle: float = 10.0
    seed_runs: int = 5
    cpu_rounds: int = 5
    timeout: float = 120.0

    @classmethod
    def quick(cls) -> Options:
        """A few seconds' worth of everything: checks the suite works, measures little."""
        return cls(
            repeat=1, push_count=500, rpc_calls=200, scale_receivers=4, scale_tasks=3,
            scale_count=5, scale_processes=2, scale_rounds=2, drain=0.5, shape_points=(1, 4),
            shape_total=40, overload_endpoints=8, overload_count=10, overload_callers=2,
            soak_rounds=2, soak_count=600, soak_tasks=3, soak_idle=1.0, seed_runs=1,
            cpu_rounds=1, timeout=60.0,
        )  # fmt: skip

    def with_settings(self, pairs: Sequence[str]) -> Options:
        """These options with ``NAME=VALUE`` pairs applied (tuples: comma-separated).

        Raises:
            ConfigurationError: An unknown name, or a value of the wrong type.
        """
        changes: dict[str, Any] = {}
        for pair in pairs:
            name, _, text = pair.partition("=")
            if name not in {f.name for f in fields(self)}:
                raise ConfigurationError(f"--set {pair}: no option {name!r}")
            current = getattr(self, name)
            try:
                if isinstance(current, tuple):
                    kind = type(current[0]) if current else str
                    changes[name] = tuple(kind(v) for v in text.split(",") if v)
                else:
                    changes[name] = type(current)(text)
            except ValueError as exc:
                raise ConfigurationError(f"--set {pair}: {exc}") from exc
        return replace(self, **changes)


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
        args.setdefault("drain", self.options.drain)
        return Worker(role, args, self.log_dir)

    @property
    def push_timeout(self) -> float:
        """How long one push run may take: ``timeout``, or more for long runs (100/s)."""
        return max(self.options.timeout, self.options.push_count / 100)

    async def raw_push(self, client: str) -> dict[str, Any]:
        """One raw publisher -> subscriber run on ``client``: rate, CPU per message of each end."""
        o = self.options
        topic = f"raw/{uuid.uuid4().hex[:8]}/push"
        wait = self.push_timeout
        pair = {"topic": topic, "count": o.push_count, "window": o.window, "size": o.payload}
        if client == "mosquitto":
            async with self.worker("raw-mosquitto-pair", **pair, timeout=wait) as both:
                result = await both.result(wait)
            return _per_message(result["rate"], result["pub_cpu"], result["sub_cpu"], o)
        subscriber = self.worker(
            f"raw-{client}-subscriber", topic=topic, count=o.push_count, timeout=wait
        )
        async with subscriber as sub:
            async with self.worker(f"raw-{client}-publisher", **pair, timeout=wait) as pub:
                sent = await pub.result(wait)
            got = await sub.result(wait)
        return _per_message(got["rate"], sent["cpu"], got["cpu"], o)

    async def push(self, client: str = "native") -> dict[str, Any]:
        """One mqttpush push run on the ``client`` transport: rate, CPU, lost and duplicates."""
        o = self.options
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        async with self.worker("push-sender", prefix=prefix, address=SENDER, client=client) as s:
            cpu = s.cpu_seconds()
            receiver = self.worker(
                "push-receiver", prefix=prefix, address=RECEIVER, sender=SENDER,
                count=o.push_count, client=client, timeout=self.push_timeout,
            )  # fmt: skip
            async with receiver:
                ours = await receiver.result(self.push_timeout)
            cpu = s.cpu_seconds() - cpu
        return {**ours, **_per_message(ours["rate"], cpu, ours["cpu"], o)}

    async def raw_rpc(self, client: str, concurrency: int) -> dict[str, Any]:
        """Raw request/response calls on ``client``, ``concurrency`` at once."""
        topic = f"raw/{uuid.uuid4().hex[:8]}/rpc"
        async with (
            self.worker(f"raw-{client}-responder", topic=topic),
            self.worker(f"raw-{client}-caller", topic=topic, **self._calls(concurrency)) as call,
        ):
            return await call.result(self.options.timeout)

    async def rpc(self, client: str, concurrency: int) -> dict[str, Any]:
        """Mqttpush calls of ``ping`` on the ``client`` transport, ``concurrency`` at once."""
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        calls = self._calls(concurrency)
        async with (
            self.worker("ping-server", prefix=prefix, address=PING, client=client),
            self.worker("rpc-caller", prefix=prefix, target=PING, client=client, **calls) as call,
        ):
            return await call.result(self.options.timeout)

    def _calls(self, concurrency: int) -> dict[str, int]:
        o = self.options
        return {"calls": o.rpc_calls, "concurrency": concurrency, "warmup": min(200, o.rpc_calls)}


def _per_message(rate: float, pub_cpu: float, sub_cpu: float, o: Options) -> dict[str, Any]:
    """A push run's rate and CPU per message (µs) of the sending and receiving ends."""
    return {
        "rate": rate,
        "cpu_us": (pub_cpu + sub_cpu) / o.push_count * 1e6,
        "send_cpu_us": pub_cpu / o.push_count * 1e6,
        "receive_cpu_us": sub_cpu / o.push_count * 1e6,
    }


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` quantile (0 to 1) of ``values`` (0 when there are none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(pct * len(ordered)))] if ordered else 0.0
