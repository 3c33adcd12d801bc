"""Prometheus metrics: what the agents count, read from the registry and from a real scrape."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mqttpush import BackgroundTaskAgent, Fabric, TaskContext
from mqttpush.errors import TaskNotFoundError
from mqttpush.models import Receipt
from mqttpush.observe import Instruments
from mqttpush.observe.prometheus import PrometheusMetrics
from mqttpush.testing import Collector, MemoryBroker, eventually
from mqttpush.tools.bench import Options
from mqttpush.tools.bench.suite import run_suite
from mqttpush.tools.devbroker import free_port
from tests.conftest import EXPECTED, make_settings
from tests.seed_procs import RECEIVER, SENDER, seed_env, serve_agents


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(all_samples, name: str, **labels: str) -> float:
    return all_samples.get((name, frozenset(labels.items())), 0.0)


class Counter3(BackgroundTaskAgent):
    async def run_background_task(self, task: TaskContext) -> int:
        for i in range(3):
            await task.push(f"#{i + 1}")
        return 3


async def test_a_task_is_counted_on_both_sides():
    settings = make_settings("127.0.0.1", 1883)
    memory = MemoryBroker()
    metrics = PrometheusMetrics()
    instruments = Instruments(metrics=metrics)
    async with Fabric(settings, transport=memory.transport(), instruments=instruments) as fabric:
        sender = await fabric.serve(Counter3(), "s@test.fabric")
        collector = await fabric.serve(Collector(), "c@test.fabric")
        remote = fabric.remote("s@test.fabric")
        await remote.register_push_endpoint(config={"task_id": "t1", "address": "c@test.fabric"})
        await remote.run_task(task_id="t1")
        await eventually(lambda: len(collector.got) == 4 and sender.deliveries.pending("t1") == 0)
        with contextlib.suppress(TaskNotFoundError):
            await remote.get_task_status(task_id="nope")
        first = collector.got[0]  # a receipt repeated (as for a duplicate) moves nothing
        sender.deliveries.on_receipt(
            Receipt(id=first.id, task_id="t1", seq=first.seq, endpoint="c@test.fabric")
        )
        got = samples(metrics.exposition().decode())
    s, c = {"agent": "s@test.fabric"}, {"agent": "c@test.fabric"}
    assert value(got, "mqttpush_notifications_sent_total", **s) == 4
    assert value(got, "mqttpush_notification_endpoints_sum", **s) == 4
    for state, n in (("queued", 4), ("published", 4), ("delivered", 4), ("expired", 0)):
        assert value(got, "mqttpush_deliveries_total", **s, state=state) == n, state
    assert value(got, "mqttpush_delivery_latency_seconds_count", **s) == 4
    assert value(got, "mqttpush_notifications_received_total", **c, outcome="handled") == 4
    assert value(got, "mqttpush_notification_end_to_end_seconds_count", **c) == 4
    assert value(got, "mqttpush_tasks_ended_total", **s, state="completed") == 1
    served = "mqttpush_rpc_server_duration_seconds_count"
    assert value(got, served, **s, method="run_task", outcome="ok") == 1
    assert value(got, served, **s, method="get_task_status", outcome="-32001") == 1
    called = "mqttpush_rpc_client_duration_seconds_count"
    assert value(got, called, method="register_push_endpoint", outcome="ok") == 1
    assert value(got, called, method="get_task_status", outcome="-32001") == 1
    assert value(got, "mqttpush_queue_depth", queue="unreceipted", agent="s@test.fabric") == 0
    assert value(got, "mqttpush_queue_depth", queue="pending_calls", agent="") == 0


async def test_window_and_unreceipted_queue_show_what_awaits_a_receipt():
    settings = make_settings("127.0.0.1", 1883)
    memory = MemoryBroker()
    metrics = PrometheusMetrics()
    async with Fabric(
        settings, transport=memory.transport(), instruments=Instruments(metrics=metrics)
    ) as fabric:
        sender = await fabric.serve(Counter3(), "s@test.fabric")
        remote = fabric.remote("s@test.fabric")
        # An endpoint nobody serves: no receipts, so all four wait in the window.
        await remote.register_push_endpoint(config={"task_id": "t1", "address": "x@test.fabric"})
        await remote.run_task(task_id="t1")
        await eventually(lambda: sender.deliveries.outstanding("x@test.fabric") == 4)
        got = samples(metrics.exposition().decode())
    agent = {"agent": "s@test.fabric"}
    assert value(got, "mqttpush_delivery_window_used", **agent, endpoint="x@test.fabric") == 4
    assert value(got, "mqttpush_queue_depth", queue="unreceipted", **agent) == 4
    assert value(got, "mqttpush_queue_bytes", queue="unreceipted", **agent) > 4 * 100


def _scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return samples(response.read().decode())


def test_serve_exposes_metrics_that_match_the_seed_scenario(broker):
    env = seed_env(
        broker, f"metrics/{time.monotonic_ns()}", MQTTPUSH_DEMO__NOTIFICATION_INTERVAL="0.3"
    )
    sender_port, receiver_port = free_port(), free_port()
    with serve_agents(
        env,
        sender_args=["--metrics-port", str(sender_port)],
        receiver_env={"MQTTPUSH_METRICS__PORT": str(receiver_port)},  # the setting, not the flag
    ):
        client = subprocess.Popen(
            [sys.executable, "-m", "mqttpush", "run"], env=env, stdout=subprocess.PIPE, text=True
        )
        sender = {"agent": SENDER}
        during = _scrape(sender_port)
        deadline = time.monotonic() + 20
        while value(during, "mqttpush_notifications_sent_total", **sender) < 2:  # bounded
            assert time.monotonic() < deadline, "the task never started sending"
            time.sleep(0.05)
            during = _scrape(sender_port)
        out, _ = client.communicate(timeout=60)
        assert out == EXPECTED
        assert client.returncode == 0
        # Receipts of the last notification may still be on their way: wait for them.
        while value(after := _scrape(sender_port), "mqttpush_deliveries_total", **sender,
                    state="delivered") < 10:  # fmt: skip
            assert time.monotonic() < deadline + 20, "receipts never counted"
            time.sleep(0.05)
        received = _scrape(receiver_port)
    # While the task ran: one task working, part of the notifications sent.
    assert value(during, "mqttpush_queue_depth", queue="running_tasks", **sender) == 1
    assert 2 <= value(during, "mqttpush_notifications_sent_total", **sender) < 10
    # Afterwards: 9 notifications and the final one, each delivered once, none expired.
    assert value(after, "mqttpush_notifications_sent_total", **sender) == 10
    assert value(after, "mqttpush_deliveries_total", **sender, state="queued") == 10
    assert value(after, "mqttpush_deliveries_total", **sender, state="expired") == 0
    assert value(after, "mqttpush_delivery_latency_seconds_count", **sender) == 10
    assert value(after, "mqttpush_notification_resends_total", **sender) == 0
    assert value(after, "mqttpush_tasks_ended_total", **sender, state="completed") == 1
    assert value(after, "mqttpush_queue_depth", queue="running_tasks", **sender) == 0
    served = "mqttpush_rpc_server_duration_seconds_count"
    for method in ("register_push_endpoint", "run_task"):
        assert value(after, served, **sender, method=method, outcome="ok") == 1, method
    recv = {"agent": RECEIVER}
    assert value(received, "mqttpush_notifications_received_total", **recv, outcome="handled") == 10
    assert value(received, "mqttpush_notification_end_to_end_seconds_count", **recv) == 10
    assert value(received, served, **recv, method="run_task", outcome="ok") == 1
    assert value(received, served, **recv, method="get_task_status", outcome="ok") >= 1
    called = "mqttpush_rpc_client_duration_seconds_count"
    assert value(received, called, method="run_task", outcome="ok") == 1
    assert value(received, "mqttpush_reconnects_total") == 0


def test_a_busy_metrics_port_is_one_clear_line_and_exit_code_2(broker):
    busy = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        env = seed_env(broker, f"metrics/busy/{time.monotonic_ns()}")
        result = subprocess.run(
            [sys.executable, "-m", "mqttpush", "serve", "sender", "--metrics-port", str(busy)],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"mqttpush: metrics.port: cannot serve on 127.0.0.1:{busy}")


@pytest.mark.timeout_s(240)
async def test_the_bench_measures_what_instruments_cost_against_off(broker, tmp_path):
    figures = await run_suite(
        broker.port, Options.quick(), tmp_path / "logs", lambda _: None, only=["instruments"]
    )
    names = [f.name for f in figures]
    assert names == [
        "instruments: CPU per notification, Prometheus metrics on (one process, memory broker)",
        "instruments: CPU per notification, OpenTelemetry tracing on (one process, memory broker)",
        "instruments: push throughput, Prometheus metrics on",
        "instruments: push throughput, OpenTelemetry tracing (SDK, every span recorded) on",
    ]
    for figure in figures:
        assert figure.value > 0
        assert figure.baseline is not None
        assert figure.baseline > 0
        assert set(figure.runs) == {"off", "metrics"} or set(figure.runs) == {"off", "tracing"}
