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

from mqttpush.observe.metrics import AgentMetrics, Metrics
from mqttpush.observe.tracing import Tracing

__all__ = ["AgentMetrics", "Instruments", "Metrics", "Tracing"]


@dataclass(frozen=True, slots=True)
class Instruments:
    """Where a fabric and its agents report: metrics and traces (both off by default)."""

    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing = field(default_factory=Tracing)
