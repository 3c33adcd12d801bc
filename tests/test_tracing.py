"""OpenTelemetry tracing: spans per the semantic conventions, and one trace across processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mqttpush import BackgroundTaskAgent, Fabric, TaskContext
from mqttpush.observe import Instruments
from mqttpush.observe.otel import OtelTracing
from mqttpush.testing import Collector, MemoryBroker, eventually
from tests.conftest import EXPECTED, make_settings
from tests.seed_procs import seed_env, serve_agents


class Two(BackgroundTaskAgent):
    async def run_background_task(self, task: TaskContext) -> int:
        await task.push("one")
        await task.push("two")
        return 2


async def test_spans_follow_the_conventions_and_the_context_travels_in_user_properties():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    memory = MemoryBroker()
    settings = make_settings("127.0.0.1", 1883)
    wire = memory.transport()  # a plain subscriber, to see what travels
    await wire.connect()
    await wire.subscribe(f"{settings.topic_prefix}/#", 1)
    instruments = Instruments(tracing=OtelTracing("me", tracer_provider=provider))
    async with Fabric(settings, transport=memory.transport(), instruments=instruments) as fabric:
        await fabric.serve(Two(), "s@test.fabric")
        collector = await fabric.serve(Collector(), "c@test.fabric")
        remote = fabric.remote("s@test.fabric")
        with instruments.tracing.span("scenario"):
            await remote.register_push_endpoint(
                config={"task_id": "t1", "address": "c@test.fabric"}
            )
            await remote.run_task(task_id="t1")
            await eventually(lambda: len(collector.got) == 3)
    spans = exporter.get_finished_spans()
    [root] = [s for s in spans if s.name == "scenario"]
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}  # one trace
    by_id = {s.context.span_id: s for s in spans}

    def attrs(span) -> dict:
        return dict(span.attributes or {})

    def parent(span):
        assert span.parent is not None
        return by_id[span.parent.span_id]

    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    producers = [s for s in spans if s.kind is SpanKind.PRODUCER]
    consumers = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert sorted(s.name for s in clients) == ["register_push_endpoint", "run_task"]
    for server in servers:  # each request's span is the child of its call's span
        assert parent(server).kind is SpanKind.CLIENT
        assert attrs(server)["rpc.system"] == "jsonrpc"
        assert attrs(server)["rpc.method"] == server.name
    assert len(producers) == len(consumers) == 3
    for consumer in consumers:
        producer = parent(consumer)
        assert producer.kind is SpanKind.PRODUCER
        assert attrs(consumer)["messaging.message.id"] == attrs(producer)["messaging.message.id"]
        assert attrs(consumer)["messaging.system"] == "mqtt"
        assert attrs(consumer)["messaging.operation.type"] == "process"
    assert attrs(producers[0])["messaging.operation.type"] == "send"
    # On the wire: W3C traceparent beside the mqttpush-trace property (kept for others).
    seen = []
    while (message := await _next(wire)) is not None:
        seen.append(message)
    pushes = [m for m in seen if "/push/" in m.topic]
    assert pushes
    for message in pushes:
        version, trace_id, _span, _flags = message.user_property("traceparent").split("-")
        assert (version, int(trace_id, 16)) == ("00", root.context.trace_id)
        assert message.user_property("mqttpush-trace") is not None


async def _next(transport):
    try:
        async with asyncio.timeout(0.2):
            return await anext(aiter(transport.messages()))
    except (TimeoutError, StopAsyncIteration):
        return None


def _spans(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_one_trace_covers_the_seed_scenario_across_three_processes(broker, tmp_path):
    files = {who: tmp_path / f"{who}.jsonl" for who in ("sender", "receiver", "client")}
    env = seed_env(broker, f"tracing/{time.monotonic_ns()}",
                   MQTTPUSH_DEMO__NOTIFICATION_INTERVAL="0.01")  # fmt: skip
    with serve_agents(
        env,
        sender_env={"MQTTPUSH_TRACING__EXPORT_FILE": str(files["sender"])},
        receiver_env={"MQTTPUSH_TRACING__EXPORT_FILE": str(files["receiver"])},
    ):
        client = subprocess.run(
            [sys.executable, "-m", "mqttpush", "run"],
            env={**env, "MQTTPUSH_TRACING__EXPORT_FILE": str(files["client"])},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert client.stdout == EXPECTED
        assert client.returncode == 0
    # The agents were stopped (SIGTERM) and flushed their spans.
    spans = {who: _spans(path) for who, path in files.items()}
    [root] = [s for s in spans["client"] if s["name"] == "mqttpush run"]
    assert root["parent_id"] is None
    trace_id = root["context"]["trace_id"]
    everything = [s for found in spans.values() for s in found]
    mine = [s for s in everything if s["context"]["trace_id"] == trace_id]
    by_id = {s["context"]["span_id"]: (who, s) for who, found in spans.items() for s in found}

    def of(who: str, kind: str, name: str | None = None) -> list[dict]:
        return [
            s
            for s in spans[who]
            if s["kind"] == f"SpanKind.{kind}"
            and s["context"]["trace_id"] == trace_id
            and (name is None or s["name"] == name)
        ]

    # client -> receiver: run_task and the long poll, answered by the receiver
    assert len(of("client", "CLIENT", "run_task")) == 1
    assert of("client", "CLIENT", "get_task_status")
    assert len(of("receiver", "SERVER", "run_task")) == 1
    # receiver -> sender: the registration and the sender's task, from the receiver's task
    for method in ("register_push_endpoint", "run_task"):
        assert len(of("receiver", "CLIENT", method)) == 1, method
        [server] = of("sender", "SERVER", method)
        assert by_id[server["parent_id"]][0] == "receiver"
    # sender -> receiver: ten notifications, each processed under its send span
    producers, consumers = of("sender", "PRODUCER"), of("receiver", "CONSUMER")
    assert len(producers) == 10
    assert len(consumers) == 10
    for consumer in consumers:
        who, parent = by_id[consumer["parent_id"]]
        assert (who, parent["kind"]) == ("sender", "SpanKind.PRODUCER")
    # Every span of every process hangs from the client's root: one tree.
    for span in mine:
        node = span
        while node["parent_id"] is not None:
            node = by_id[node["parent_id"]][1]
        assert node is root
    assert len(mine) >= 1 + 2 + 1 + 2 + 2 + 10 + 10
