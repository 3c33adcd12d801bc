"""Prometheus metrics (the ``metrics`` extra: prometheus_client).

Figures are kept as plain numbers, updated on the event loop as events happen, and
turned into Prometheus families only when the registry is collected (a scrape): the
hot path pays an integer or a bucket increment, never a lock. Queue depths, sizes and
window occupancy are read from their owners at collection. Every figure lives in this
object's own :class:`~prometheus_client.CollectorRegistry`, so several fabrics (or
tests) in one process never collide. The names are listed in the README ("Metrics").
"""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from mqttpush.models import DeliveryState, TaskState
from mqttpush.observe.metrics import AgentMetrics, Metrics

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from prometheus_client.metrics_core import Metric

    from mqttpush.observe.metrics import QueueReading

__all__ = ["CONTENT_TYPE", "PrometheusMetrics"]

#: The Content-Type of :meth:`PrometheusMetrics.exposition` (text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_ENDPOINTS = (0, 1, 2, 5, 10, 25, 50, 100)
_MAX_LABELS = 64  # distinct method labels per agent; more are counted as "_other"


class _Histogram:
    """Counts per bucket (``value <= bound``, then +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = _LATENCY) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative = list(itertools.accumulate(self.counts))
        buckets = [(f"{b:g}", c) for b, c in zip(self.bounds, cumulative, strict=False)]
        buckets.append(("+Inf", cumulative[-1]))
        family.add_metric(labels, buckets, self.total)


class _AgentMetrics(AgentMetrics):
    __slots__ = (
        "delivered_in",
        "deliveries",
        "end_to_end",
        "endpoints",
        "received",
        "resends",
        "sent",
        "served",
        "tasks",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.endpoints = _Histogram(_ENDPOINTS)
        self.deliveries = dict.fromkeys(DeliveryState, 0)
        self.delivered_in = _Histogram()
        self.resends = 0
        self.received: dict[str, int] = {}
        self.end_to_end = _Histogram()
        self.served: dict[tuple[str, str], _Histogram] = {}
        self.tasks = dict.fromkeys(TaskState, 0)

    def notification_sent(self, endpoints: int) -> None:
        self.sent += 1
        self.endpoints.observe(endpoints)
        self.deliveries[DeliveryState.QUEUED] += endpoints

    def delivery_moved(self, state: DeliveryState) -> None:
        self.deliveries[state] += 1

    def delivery_latency(self, seconds: float) -> None:
        self.delivered_in.observe(seconds)

    def resent(self) -> None:
        self.resends += 1

    def notification_received(self, outcome: str, sent_at: datetime | None = None) -> None:
        self.received[outcome] = self.received.get(outcome, 0) + 1
        if sent_at is not None:
            self.end_to_end.observe(max(0.0, (datetime.now(UTC) - sent_at).total_seconds()))

    def request_served(self, method: str, outcome: str, seconds: float) -> None:
        _observe(self.served, method, outcome, seconds)

    def task_ended(self, state: TaskState) -> None:
        self.tasks[state] += 1


def _observe(
    table: dict[tuple[str, str], _Histogram], method: str, outcome: str, seconds: float
) -> None:
    histogram = table.get((method, outcome))
    if histogram is None:
        key = (method, outcome) if len(table) < _MAX_LABELS else ("_other", outcome)
        histogram = table.setdefault(key, _Histogram())
    histogram.observe(seconds)


class PrometheusMetrics(Metrics, Collector):
    """Metrics for Prometheus, in a registry of their own (:attr:`registry`)."""

    def __init__(self) -> None:
        self._agents: dict[str, _AgentMetrics] = {}
        self._calls: dict[tuple[str, str], _Histogram] = {}
        self._reconnects = self._sessions_lost = self._held = 0
        self._dropped: dict[str, int] = {}
        self._queues: list[tuple[str, str, Callable[[], QueueReading]]] = []
        self._windows: list[tuple[str, Callable[[], Mapping[str, int]]]] = []
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (what a scrape returns)."""
        return generate_latest(self.registry)

    def agent(self, address: str) -> AgentMetrics:
        """The metrics of the agent at ``address``."""
        return self._agents.setdefault(address, _AgentMetrics())

    def call_done(self, method: str, outcome: str, seconds: float) -> None:
        """Observe one call's duration under its method and outcome."""
        _observe(self._calls, method, outcome, seconds)

    def reconnected(self, *, session_lost: bool) -> None:
        """Count a reconnect (and a lost session)."""
        self._reconnects += 1
        self._sessions_lost += session_lost

    def message_held(self) -> None:
        """Count a held message."""
        self._held += 1

    def message_dropped(self, reason: str) -> None:
        """Count a dropped message."""
        self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def watch(self, queue: str, agent: str, read: Callable[[], QueueReading]) -> None:
        """Read ``queue`` at every collection."""
        self._queues.append((queue, agent, read))

    def watch_window(self, agent: str, read: Callable[[], Mapping[str, int]]) -> None:
        """Read ``agent``'s window occupancy at every collection."""
        self._windows.append((agent, read))

    def collect(self) -> Iterator[Metric]:
        """Every family, made from the figures as they are now."""
        yield from self._agent_families()
        yield from self._process_families()
        yield from self._readings()

    def _agent_families(self) -> Iterator[Metric]:
        def counter(name: str, doc: str, *labels: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=("agent", *labels))

        def histogram(name: str, doc: str, *labels: str) -> HistogramMetricFamily:
            return HistogramMetricFamily(name, doc, labels=("agent", *labels))

        sent = counter(
            "mqttpush_notifications_sent",
            "Notifications an agent sent (each to every endpoint of its task).",
        )
        endpoints = histogram(
            "mqttpush_notification_endpoints", "Endpoints each notification was sent to."
        )
        deliveries = counter(
            "mqttpush_deliveries",
            "Deliveries (one notification to one endpoint) that reached each state.",
            "state",
        )
        latency = histogram(
            "mqttpush_delivery_latency_seconds",
            "From a delivery's first publish to the endpoint's receipt.",
        )
        resends = counter(
            "mqttpush_notification_resends", "Notifications published again for want of a receipt."
        )
        received = counter(
            "mqttpush_notifications_received",
            "Notifications that arrived, by "
            "outcome: handled, duplicate, failed, rejected, malformed.",
            "outcome",
        )
        end_to_end = histogram(
            "mqttpush_notification_end_to_end_seconds",
            "From a notification's timestamp to the end of its handling.",
        )
        served = histogram(
            "mqttpush_rpc_server_duration_seconds",
            "Requests answered, by method and outcome (ok, repeated, or the JSON-RPC error code).",
            "method",
            "outcome",
        )
        tasks = counter("mqttpush_tasks_ended", "Tasks that ended, by terminal state.", "state")
        for address, m in sorted(self._agents.items()):
            sent.add_metric([address], m.sent)
            m.endpoints.add_to(endpoints, [address])
            for state, n in m.deliveries.items():
                deliveries.add_metric([address, state.value], n)
            m.delivered_in.add_to(latency, [address])
            resends.add_metric([address], m.resends)
            for outcome, n in sorted(m.received.items()):
                received.add_metric([address, outcome], n)
            m.end_to_end.add_to(end_to_end, [address])
            for (method, outcome), h in sorted(m.served.items()):
                h.add_to(served, [address, method, outcome])
            for task_state, n in m.tasks.items():
                if task_state.is_terminal:
                    tasks.add_metric([address, task_state.value], n)
        yield from (
            sent,
            endpoints,
            deliveries,
            latency,
            resends,
            received,
            end_to_end,
            served,
            tasks,
        )

    def _process_families(self) -> Iterator[Metric]:
        calls = HistogramMetricFamily(
            "mqttpush_rpc_client_duration_seconds",
            "Calls this process made, by method and "
            "outcome (ok, a JSON-RPC error code, timeout, connection, protocol).",
            labels=("method", "outcome"),
        )
        for (method, outcome), h in sorted(self._calls.items()):
            h.add_to(calls, [method, outcome])
        dropped = CounterMetricFamily(
            "mqttpush_messages_dropped",
            "Messages acknowledged without being handled, by reason.",
            labels=("reason",),
        )
        for reason, n in sorted(self._dropped.items()):
            dropped.add_metric([reason], n)
        yield calls
        yield dropped
        yield CounterMetricFamily(
            "mqttpush_reconnects", "Times the connection came back.", value=self._reconnects
        )
        yield CounterMetricFamily(
            "mqttpush_sessions_lost",
            "Reconnects without the broker's persistent session.",
            value=self._sessions_lost,
        )
        yield CounterMetricFamily(
            "mqttpush_messages_held",
            "Messages that arrived before their agent was served.",
            value=self._held,
        )

    def _readings(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "mqttpush_queue_depth",
            "Items waiting in each queue: held (messages before their "
            "agent is served), pending_calls, unreceipted (deliveries awaiting a final state), "
            "running_tasks.",
            labels=("queue", "agent"),
        )
        size = GaugeMetricFamily(
            "mqttpush_queue_bytes",
            "Payload bytes waiting in each queue (where known).",
            labels=("queue", "agent"),
        )
        for queue, agent, read in self._queues:
            items, octets = read()
            depth.add_metric((queue, agent), items)
            if octets is not None:
                size.add_metric((queue, agent), octets)
        window = GaugeMetricFamily(
            "mqttpush_delivery_window_used",
            "Notifications awaiting a receipt, per endpoint (at most agent.delivery_window).",
            labels=("agent", "endpoint"),
        )
        for agent, read_window in self._windows:
            for endpoint, used in sorted(read_window().items()):
                window.add_metric((agent, endpoint), used)
        yield depth
        yield size
        yield window
