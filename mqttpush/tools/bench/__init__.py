"""The benchmark suite (``mqttpush bench``, ``make bench``): figures with same-run baselines.

It starts its own Mosquitto from ``mosquitto.conf`` on a free 127.0.0.1 port, measures
each figure beside raw baselines on every client it compares with (the native transport
used raw, paho-mqtt, gmqtt, aiomqtt, Mosquitto's C clients), back to back in the same
run, and prints every figure with its baseline and their ratio. The overload and soak
modes are opt-in parts. See docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError
from mqttpush.tools.bench.report import table, write_chart, write_json
from mqttpush.tools.bench.suite import STEPS, Options, run_suite
from mqttpush.tools.devbroker import LocalMosquitto

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mqttpush.tools.bench.figures import Figure

__all__ = ["STEPS", "Options", "run_bench"]


def run_bench(
    *,
    config: Path,
    options: Options,
    json_path: Path | None,
    chart_path: Path | None,
    command: str,
    only: Sequence[str] = (),
) -> list[Figure]:
    """Run the suite against a Mosquitto of its own; print the table, write the files.

    Raises:
        ConfigurationError: ``config`` does not exist, or the chart cannot be drawn.
    """
    if not config.is_file():
        raise ConfigurationError(f"no broker configuration at {config} (see --config)")
    log_dir = Path(".run/bench/logs")  # worker logs, wherever the results go
    started = time.monotonic()
    with LocalMosquitto(config) as broker:
        print(f"mosquitto on 127.0.0.1:{broker.port}; worker logs in {log_dir}", flush=True)
        figures = asyncio.run(run_suite(broker.port, options, log_dir, _echo, only))
    print()
    print(table(figures))
    print(f"\nsuite time: {time.monotonic() - started:.0f} s")
    if json_path is not None:
        write_json(figures, json_path, command)
        print(f"results: {json_path}")
    if chart_path is not None:
        write_chart(figures, chart_path)
        print(f"chart: {chart_path}")
    return figures


def _echo(line: str) -> None:
    print(line, flush=True)
