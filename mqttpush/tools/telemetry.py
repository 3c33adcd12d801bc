"""Metrics and traces for the ``mqttpush`` command, from the ``metrics`` and ``tracing`` settings.

``metrics.port`` serves Prometheus metrics over HTTP at ``/metrics`` (127.0.0.1 by
default); ``tracing.export_file`` sets up the OpenTelemetry SDK to write every finished
span to that file as one JSON object per line (several processes may share a file).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TYPE_CHECKING

from mqttpush.errors import ConfigurationError
from mqttpush.observe import Instruments
from mqttpush.tools.httpd import serve_pages

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from mqttpush.settings import Settings

__all__ = ["telemetry"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _span_file(path: Path) -> Iterator[None]:
    try:
        from opentelemetry import trace  # noqa: PLC0415 - the tracing extra
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:
        raise ConfigurationError(
            f"tracing.export_file needs opentelemetry-sdk (pip install opentelemetry-sdk): {exc}"
        ) from exc
    with path.open("a", encoding="utf-8") as out:
        name = " ".join(["mqttpush", *sys.argv[1:2]])
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        exporter = ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        try:
            yield
        finally:
            provider.shutdown()


@contextlib.asynccontextmanager
async def telemetry(
    settings: Settings, *, serve_metrics: bool = True
) -> AsyncIterator[Instruments | None]:
    """Set up what the settings ask for; yields the instruments for the fabric (None: defaults).

    Commands that serve no agent pass ``serve_metrics=False``: they export spans only.

    Raises:
        ConfigurationError: A needed extra is not installed.
    """
    async with contextlib.AsyncExitStack() as stack:
        if settings.tracing.export_file is not None:
            stack.enter_context(_span_file(settings.tracing.export_file))
        if settings.metrics.port is None or not serve_metrics:
            yield None
            return
        try:
            from mqttpush.observe.prometheus import (  # noqa: PLC0415 - the metrics extra
                CONTENT_TYPE,
                PrometheusMetrics,
            )
        except ImportError as exc:
            raise ConfigurationError(
                f"metrics.port needs the metrics extra (pip install 'mqttpush[metrics]'): {exc}"
            ) from exc
        metrics = PrometheusMetrics()
        routes = {"/metrics": lambda: (CONTENT_TYPE, metrics.exposition())}
        host, port = settings.metrics.host, settings.metrics.port
        try:
            bound = await stack.enter_async_context(serve_pages(routes, host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"metrics.port: cannot serve on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        log.info("metrics at http://%s:%d/metrics", host, bound)
        tracing = None
        if settings.tracing.enabled or settings.tracing.export_file is not None:
            from mqttpush.observe.otel import OtelTracing  # noqa: PLC0415

            tracing = OtelTracing()
        yield Instruments(metrics=metrics, tracing=tracing or Instruments().tracing)
