"""The benchmark suite: each figure measured beside its raw baseline, in the same run.

Every figure is the median of ``repeat`` runs, and each run measures the baseline and
mqttpush back to back, so a machine that gets busier affects both alike. Every process
(broker, senders, receivers, callers) is separate, as in a deployment.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mqttpush.tools.bench import cluster, compare, footprint, pool, scale, variations
from mqttpush.tools.bench.instrumented import instrument_cost
from mqttpush.tools.bench.overload import overload
from mqttpush.tools.bench.run import Options, Run
from mqttpush.tools.bench.soak import soak

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from pathlib import Path

    from mqttpush.tools.bench.figures import Figure

__all__ = ["STEPS", "Options", "run_suite"]


#: The suite's parts, by the name ``--only`` takes.
STEPS: dict[str, tuple[str, Callable[[Run], Awaitable[Figure | list[Figure]]]]] = {
    "push": ("push throughput, against every client", compare.push),
    "rpc": ("RPC, against every client", compare.rpc),
    "scale": ("scale", scale.scale),
    "shape": ("scale shape: 1 to 1,000 endpoints", scale.shape),
    "memory": ("memory and import time", footprint.memory),
    "seed": ("seed scenario", footprint.seed),
    "priority": ("latency per priority under load", variations.priority_latency),
    "filter": ("what a filter costs the sender", variations.filter_cost),
    "pool": ("agent pool throughput (PostgreSQL)", pool.throughput),
    "pool-failover": ("agent pool copy failover (PostgreSQL)", pool.failover),
    "cluster-failover": ("broker node failover (two-node ejabberd, root)", cluster.failover),
    "instruments": ("metrics and tracing on the hot path", instrument_cost),
    "overload": ("overload: 1,000 endpoints x 101 notifications with RPCs", overload),
    "soak": ("soak: repeated long runs, memory and idle CPU", soak),
}


#: Parts that run only when named: they need more than a broker (PostgreSQL, ejabberd),
#: or are modes of their own that take long (``--overload``, ``--soak``).
OPT_IN = frozenset({"pool", "pool-failover", "cluster-failover", "overload", "soak"})


async def run_suite(
    port: int,
    options: Options,
    log_dir: Path,
    echo: Callable[[str], None] = print,
    only: Sequence[str] = (),
) -> list[Figure]:
    """Measure every figure (or those of the parts in ``only``) on ``127.0.0.1:port``.

    The :data:`OPT_IN` parts run only when ``only`` names them.
    """
    run = Run(port, options, log_dir, echo)
    figures: list[Figure] = []
    for name, (title, step) in STEPS.items():
        if (only and name not in only) or (not only and name in OPT_IN):
            continue
        started = time.monotonic()
        echo(f"{title}...")
        result = await step(run)
        figures.extend(result if isinstance(result, list) else [result])
        echo(f"  ({time.monotonic() - started:.1f} s)")
    return figures
