"""Prometheus metrics (the ``metrics`` extra: prometheus_client).

Every figure lives in this object's own :class:`~prometheus_client.CollectorRegistry`,
so several fabrics (or tests) in one process never collide. Counters and histograms
are updated as events happen, through label children bound once per agent; queue
depths, sizes and window occupancy are read when the registry is collected. The names
and labels are listed in the README ("Metrics").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
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
_MAX_METHODS = 64  # distinct method labels per agent; more are counted as "_other"


class _Families:
    """The metric families of one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...] = _LATENCY
        ) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=registry)

        self.notifications = counter(
            "mqttpush_notifications_sent", "Notifications an agent sent (each to every endpoint of "
            "its task).", ("agent",)
        )  # fmt: skip
        self.endpoints = histogram(
            "mqttpush_notification_endpoints", "Endpoints each notification was sent to.",
            ("agent",), _ENDPOINTS,
        )  # fmt: skip
        self.deliveries = counter(
            "mqttpush_deliveries", "Deliveries (one notification to one endpoint) that reached "
            "each state: queued, published, delivered, failed, expired.", ("agent", "state")
        )  # fmt: skip
        self.delivery_latency = histogram(
            "mqttpush_delivery_latency_seconds", "From a delivery's first publish to the "
            "endpoint's receipt.", ("agent",)
        )  # fmt: skip
        self.resends = counter(
            "mqttpush_notification_resends", "Notifications published again for want of a "
            "receipt.", ("agent",)
        )  # fmt: skip
        self.received = counter(
            "mqttpush_notifications_received", "Notifications that arrived, by outcome: handled, "
            "duplicate, failed, rejected, malformed.", ("agent", "outcome")
        )  # fmt: skip
        self.end_to_end = histogram(
            "mqttpush_notification_end_to_end_seconds", "From a notification's timestamp (made "
            "by its sender) to the end of its handling.", ("agent",)
        )  # fmt: skip
        self.served = histogram(
            "mqttpush_rpc_server_duration_seconds", "Requests an agent answered, by method and "
            "outcome (ok, or the JSON-RPC error code).", ("agent", "method", "outcome")
        )  # fmt: skip
        self.calls = histogram(
            "mqttpush_rpc_client_duration_seconds", "Calls this process made, by method and "
            "outcome (ok, a JSON-RPC error code, timeout, connection, protocol).",
            ("method", "outcome"),
        )  # fmt: skip
        self.tasks = counter(
            "mqttpush_tasks_ended", "Tasks that ended, by terminal state.", ("agent", "state")
        )
        self.reconnects = counter("mqttpush_reconnects", "Times the connection came back.", ())
        self.sessions_lost = counter(
            "mqttpush_sessions_lost", "Reconnects without the broker's persistent session.", ()
        )
        self.held = counter(
            "mqttpush_messages_held", "Messages that arrived before their agent was served.", ()
        )
        self.dropped = counter(
            "mqttpush_messages_dropped", "Messages acknowledged without being handled, by "
            "reason.", ("reason",)
        )  # fmt: skip


class _AgentMetrics(AgentMetrics):
    __slots__ = ("_address", "_by_state", "_children", "_f", "_methods", "_received")

    def __init__(self, families: _Families, address: str) -> None:
        f = self._f = families
        self._address = address
        self._by_state = {s: f.deliveries.labels(address, s.value) for s in DeliveryState}
        self._received: dict[str, Counter] = {}
        self._methods: dict[tuple[str, str], Histogram] = {}
        self._children = (
            f.notifications.labels(address),
            f.endpoints.labels(address),
            f.delivery_latency.labels(address),
            f.resends.labels(address),
            f.end_to_end.labels(address),
        )

    def notification_sent(self, endpoints: int) -> None:
        self._children[0].inc()
        self._children[1].observe(endpoints)
        if endpoints:
            self._by_state[DeliveryState.QUEUED].inc(endpoints)

    def delivery_moved(self, state: DeliveryState) -> None:
        self._by_state[state].inc()

    def delivery_latency(self, seconds: float) -> None:
        self._children[2].observe(seconds)

    def resent(self) -> None:
        self._children[3].inc()

    def notification_received(self, outcome: str, sent_at: datetime | None = None) -> None:
        child = self._received.get(outcome)
        if child is None:
            child = self._received[outcome] = self._f.received.labels(self._address, outcome)
        child.inc()
        if sent_at is not None:
            self._children[4].observe(max(0.0, (datetime.now(UTC) - sent_at).total_seconds()))

    def request_served(self, method: str, outcome: str, seconds: float) -> None:
        key = (method, outcome)
        child = self._methods.get(key)
        if child is None:
            if len(self._methods) >= _MAX_METHODS:
                key = ("_other", outcome)
            child = self._methods.get(key) or self._f.served.labels(self._address, *key)
            self._methods[key] = child
        child.observe(seconds)

    def task_ended(self, state: TaskState) -> None:
        self._f.tasks.labels(self._address, state.value).inc()


class _Readings(Collector):
    """Queue depths, sizes and window occupancy, read from their owners when collected."""

    def __init__(self) -> None:
        self.queues: list[tuple[str, str, Callable[[], QueueReading]]] = []
        self.windows: list[tuple[str, Callable[[], Mapping[str, int]]]] = []

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "mqttpush_queue_depth", "Items waiting in each queue: held (messages before their "
            "agent is served), pending_calls, unreceipted (deliveries awaiting a final state), "
            "running_tasks.", labels=("queue", "agent"),
        )  # fmt: skip
        size = GaugeMetricFamily(
            "mqttpush_queue_bytes", "Payload bytes waiting in each queue (where known).",
            labels=("queue", "agent"),
        )  # fmt: skip
        for queue, agent, read in self.queues:
            items, octets = read()
            depth.add_metric((queue, agent), items)
            if octets is not None:
                size.add_metric((queue, agent), octets)
        window = GaugeMetricFamily(
            "mqttpush_delivery_window_used", "Notifications awaiting a receipt, per endpoint "
            "(at most agent.delivery_window).", labels=("agent", "endpoint"),
        )  # fmt: skip
        for agent, read_window in self.windows:
            for endpoint, used in sorted(read_window().items()):
                window.add_metric((agent, endpoint), used)
        yield depth
        yield size
        yield window


class PrometheusMetrics(Metrics):
    """Metrics kept in a Prometheus registry of their own (:attr:`registry`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._f = _Families(self.registry)
        self._readings = _Readings()
        self.registry.register(self._readings)
        self._agents: dict[str, _AgentMetrics] = {}
        self._calls: dict[tuple[str, str], Histogram] = {}
        self._dropped: dict[str, Counter] = {}

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (what a scrape returns)."""
        return generate_latest(self.registry)

    def agent(self, address: str) -> AgentMetrics:
        """The metrics of the agent at ``address`` (label children bound once)."""
        metrics = self._agents.get(address)
        if metrics is None:
            metrics = self._agents[address] = _AgentMetrics(self._f, address)
        return metrics

    def call_done(self, method: str, outcome: str, seconds: float) -> None:
        """Observe one call's duration under its method and outcome."""
        key = (method, outcome)
        child = self._calls.get(key)
        if child is None:
            child = self._calls[key] = self._f.calls.labels(method, outcome)
        child.observe(seconds)

    def reconnected(self, *, session_lost: bool) -> None:
        """Count a reconnect (and a lost session)."""
        self._f.reconnects.inc()
        if session_lost:
            self._f.sessions_lost.inc()

    def message_held(self) -> None:
        """Count a held message."""
        self._f.held.inc()

    def message_dropped(self, reason: str) -> None:
        """Count a dropped message."""
        child = self._dropped.get(reason)
        if child is None:
            child = self._dropped[reason] = self._f.dropped.labels(reason)
        child.inc()

    def watch(self, queue: str, agent: str, read: Callable[[], QueueReading]) -> None:
        """Read ``queue`` at every collection."""
        self._readings.queues.append((queue, agent, read))

    def watch_window(self, agent: str, read: Callable[[], Mapping[str, int]]) -> None:
        """Read ``agent``'s window occupancy at every collection."""
        self._readings.windows.append((agent, read))
