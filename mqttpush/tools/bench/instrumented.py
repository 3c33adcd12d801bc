"""What instruments cost on the hot path: push throughput with metrics or tracing on vs off.

Each round runs the same push (one sender process, one receiver process, as in the
``push`` part) three times back to back: instruments off, Prometheus metrics on (both
processes), and OpenTelemetry tracing on (the SDK recording every span into a batch
processor whose exporter drops them). The figures are the medians, each against the
"off" median of the same run.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mqttpush.observe import Instruments
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.run import RECEIVER, SENDER, median

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mqttpush.tools.bench.run import Run

__all__ = ["MODES", "instrument_cost", "instruments_for"]

MODES = ("off", "metrics", "tracing")


def instruments_for(mode: str) -> Instruments | None:
    """The instruments a worker runs with (None: the fabric's defaults, nothing recorded)."""
    if mode == "metrics":
        from mqttpush.observe.prometheus import PrometheusMetrics  # noqa: PLC0415 - an extra

        return Instruments(metrics=PrometheusMetrics())
    if mode == "tracing":
        from opentelemetry import trace  # noqa: PLC0415 - an extra
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from mqttpush.observe.otel import OtelTracing  # noqa: PLC0415

        class _Drop(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                del spans
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_Drop()))
        trace.set_tracer_provider(provider)
        return Instruments(tracing=OtelTracing())
    return None


async def _push(run: Run, mode: str) -> float:
    o = run.options
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    async with run.worker("push-sender", prefix=prefix, address=SENDER, instruments=mode):
        receiver = run.worker(
            "push-receiver", prefix=prefix, address=RECEIVER, sender=SENDER,
            count=o.push_count, instruments=mode,
        )  # fmt: skip
        async with receiver:
            result = await receiver.result(o.timeout)
    return float(result["rate"])


async def _cpu(run: Run, mode: str) -> float:
    count = max(1000, run.options.push_count // 4)
    async with run.worker("push-cpu", instruments=mode, count=count) as worker:
        result = await worker.result(run.options.timeout)
    return float(result["cpu_per_notification"]) * 1e6


async def instrument_cost(run: Run) -> list[Figure]:
    """CPU per notification and push throughput, with metrics on and tracing on, each vs off."""
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(run.options.cpu_rounds):
        for mode in MODES:
            cpu[mode].append(await _cpu(run, mode))
        run.echo("  cpu: " + ", ".join(f"{m} {cpu[m][-1]:.1f} µs" for m in MODES))
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(run.options.repeat):
        for mode in MODES:
            rates[mode].append(await _push(run, mode))
        run.echo("  push: " + ", ".join(f"{m} {rates[m][-1]:,.0f}/s" for m in MODES))
    off, cpu_off = median(rates["off"]), median(cpu["off"])
    return [
        Figure(
            name=f"instruments: CPU per notification, {what} on (one process, memory broker)",
            unit="µs",
            value=median(cpu[mode]),
            baseline=cpu_off,
            baseline_label="the same, instruments off",
            better="lower",
            target=target,
            runs={mode: cpu[mode], "off": cpu["off"]},
        )
        for mode, what, target in (
            ("metrics", "Prometheus metrics", 1.05),
            ("tracing", "OpenTelemetry tracing", None),
        )
    ] + [
        Figure(
            name=f"instruments: push throughput, {what} on",
            unit="notifications/s",
            value=median(rates[mode]),
            baseline=off,
            baseline_label="the same push, instruments off",
            target=target,
            runs={mode: rates[mode], "off": rates["off"]},
        )
        for mode, what, target in (
            ("metrics", "Prometheus metrics", 0.95),
            ("tracing", "OpenTelemetry tracing (SDK, every span recorded)", None),
        )
    ]
