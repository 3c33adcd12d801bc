"""Instrumentation: the seam through which the library reports what it does.

Agents, the message loop, the connection and the RPC caller report events to
:class:`Metrics` and open spans with :class:`Tracing`. Both defaults record nothing and
import nothing beyond the standard library; ``mqttpush.observe.prometheus`` (the
``metrics`` extra, prometheus_client) and ``mqttpush.observe.otel`` (the ``tracing``
extra, opentelemetry-api) are the implementations::

    from mqttpush.observe import Instruments
    from mqttpush.observe.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()
    async with Fabric(settings, instruments=Instruments(metrics=metrics)) as fabric:
        ...  # metrics.registry holds every figure; metrics.exposition() renders it
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError
from mqttpush.observe.metrics import AgentMetrics, Metrics
from mqttpush.observe.tracing import Tracing

if TYPE_CHECKING:
    from mqttpush.settings import TracingSettings

__all__ = ["AgentMetrics", "Instruments", "Metrics", "Tracing", "default_instruments"]


@dataclass(frozen=True, slots=True)
class Instruments:
    """Where a fabric and its agents report: metrics and traces (both off by default)."""

    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing = field(default_factory=Tracing)


def default_instruments(tracing: TracingSettings, client_id: str) -> Instruments:
    """No metrics; OpenTelemetry spans when the tracing settings turn them on.

    Raises:
        ConfigurationError: Tracing is on but the ``tracing`` extra is not installed.
    """
    if not (tracing.enabled or tracing.export_file):
        return Instruments()
    try:
        from mqttpush.observe.otel import OtelTracing  # noqa: PLC0415 - an optional extra
    except ImportError as exc:
        raise ConfigurationError(
            f"tracing.enabled needs the tracing extra (pip install 'mqttpush[tracing]'): {exc}"
        ) from exc
    return Instruments(tracing=OtelTracing(client_id))
