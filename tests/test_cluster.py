"""A real two-node MQTT 5 cluster (ejabberd, started here): agents spread over its nodes.

The seed scenario runs with the sender on node A and the receiver on node B; then node
A is killed with SIGKILL while the sender, connected to it, runs a 500-notification
task: the sender fails over to node B through its broker list and the task completes
with every notification handled exactly once. The same again with the sender behind a
TCP front (haproxy, health-checking both nodes, started here on a free port): the
sender knows only the front's address, and the node it is on is killed. The broker
failover benchmark (``mqttpush bench --only cluster-failover``) runs once each way on
the same cluster.

Agent pools need shared subscriptions, which ejabberd 23.01 lacks (it closes the
connection with 0x9E): they are not applicable here, and run on Mosquitto
(tests/test_pool.py); the last test pins that limitation down.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from typing import TYPE_CHECKING

import pytest

from mqttpush import Fabric, TaskPushNotificationConfig, TaskState
from mqttpush.errors import ConnectionLostError, MqttPushError, PacketRefusedError
from mqttpush.models import TaskStatus
from mqttpush.servers import Server
from mqttpush.settings import BrokerSettings, DemoSettings, Settings
from mqttpush.testing import Collector, eventually
from mqttpush.tools.bench.cluster import measure
from mqttpush.tools.bench.run import Options, Run
from mqttpush.tools.cli import agent_settings
from mqttpush.tools.demo import PushReceiver, PushSender, run_client
from mqttpush.tools.tcpfront import TcpFront
from mqttpush.transport.native import NativeTransport
from tests.ejabberd import PASSWORD, USERNAME, EjabberdCluster

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.ejabberd import EjabberdNode

pytestmark = pytest.mark.cluster

SENDER = "sender@fame.fabric"
RECEIVER = "receiver@fame.fabric"
HANDLER = "handler@fame.fabric"


@pytest.fixture(scope="module")
def cluster() -> Iterator[EjabberdCluster]:
    with EjabberdCluster() as running:
        yield running


def on(servers: list[str], prefix: str, **demo: object) -> Settings:
    """Settings for one process of a test: these broker nodes, in this order."""
    return Settings(
        topic_prefix=prefix,
        broker=BrokerSettings(
            servers=servers,
            username=USERNAME,
            password=PASSWORD,
            reconnect_min_delay=0.05,
            reconnect_max_delay=1.0,
        ),
        demo=DemoSettings(**demo),
    )


def _prefix() -> str:
    return f"test/{time.monotonic_ns() % 10**12}"


@pytest.mark.timeout_s(180)
async def test_the_seed_scenario_runs_with_the_agents_on_different_nodes(cluster):
    prefix = _prefix()
    a_first, b_first = cluster.servers, cluster.servers[::-1]
    demo = {"notification_interval": 0.0, "task_timeout": 60.0}
    sender_settings = agent_settings(on(a_first, prefix, **demo), SENDER)
    receiver_settings = agent_settings(on(b_first, prefix, **demo), RECEIVER)
    async with (
        Fabric(sender_settings) as sender_fabric,
        Fabric(receiver_settings) as receiver_fabric,
    ):
        await sender_fabric.serve(PushSender(count=9, interval=0.0), SENDER)
        await receiver_fabric.serve(
            PushReceiver(sender_address=SENDER, task_timeout=60.0), RECEIVER
        )
        assert sender_fabric.server == Server("127.0.0.1", cluster.a.port)
        assert receiver_fabric.server == Server("127.0.0.1", cluster.b.port)
        result = await run_client(on(a_first, prefix, **demo))
    assert result["notifications"] == [f"Notification #{i}" for i in range(1, 10)]


async def task_across_a_kill(
    cluster: EjabberdCluster,
    sender_servers: list[str],
    node_of: Callable[[Fabric], EjabberdNode],
) -> float:
    """Kill the sender's node during a 500-notification task; return the reconnect time.

    The sender connects to ``sender_servers``; ``node_of`` says which node it is on. The
    endpoint and the caller connect to the other node only. Every notification must be
    handled exactly once, and the task must complete.
    """
    cluster.revive()  # an earlier test may have killed a node
    prefix = _prefix()
    count = 500
    sender_settings = agent_settings(on(sender_servers, prefix), SENDER)
    async with Fabric(sender_settings) as sender_fabric:
        await sender_fabric.serve(PushSender(count=count, interval=0.0), SENDER)
        victim = node_of(sender_fabric)
        survivor = cluster.other(victim)
        survivor_only = on([survivor.address], prefix)
        async with (
            Fabric(agent_settings(survivor_only, HANDLER)) as handler_fabric,
            Fabric(survivor_only) as client,
        ):
            handler = await handler_fabric.serve(Collector(), HANDLER)
            sender = client.remote(SENDER)
            endpoint = TaskPushNotificationConfig(task_id="big", address=HANDLER)
            await sender.call("register_push_endpoint", {"config": endpoint.model_dump()})
            await sender.call("run_task", {"task_id": "big"})
            await eventually(lambda: len(handler.got) >= count // 5, timeout=60)
            killed_at = time.monotonic()
            await asyncio.to_thread(victim.kill)
            await eventually(lambda: sender_fabric.reconnects >= 1, timeout=30)
            failover = time.monotonic() - killed_at
            assert node_of(sender_fabric) is survivor

            async def final() -> TaskStatus:
                while True:
                    try:
                        raw = await sender.call(
                            "get_task_status", {"task_id": "big", "wait": 10}, timeout=15
                        )
                    except (ConnectionLostError, MqttPushError):
                        await asyncio.sleep(0.5)  # a node's death can drop the client once too
                        continue
                    status = TaskStatus.model_validate(raw)
                    if status.state.is_terminal:
                        return status

            status = await asyncio.wait_for(final(), 150)
            assert status.state is TaskState.COMPLETED
            await eventually(lambda: len({n.seq for n in handler.got}) == count + 1, timeout=60)
            seqs = [n.seq for n in handler.got]
            assert sorted(seqs) == list(range(1, count + 2))  # each once: no loss, no duplicate
            assert max(handler.got, key=lambda n: n.seq).state is TaskState.COMPLETED
    return failover


@pytest.mark.timeout_s(240)
async def test_killing_the_senders_node_mid_task_fails_over_and_loses_nothing(cluster):
    def node_of(fabric: Fabric) -> EjabberdNode:
        return cluster.node_on(fabric.server.port)

    failover = await task_across_a_kill(cluster, cluster.servers, node_of)
    print(f"broker node failover: reconnected {failover:.2f} s after the kill")


@pytest.mark.timeout_s(240)
async def test_behind_a_tcp_front_a_node_kill_mid_task_loses_nothing(cluster):
    # haproxy in TCP mode, health-checking both nodes: the sender knows one address only.
    with TcpFront({"a": cluster.a.address, "b": cluster.b.address}) as front:
        cluster.revive()
        await eventually(lambda: set(front.status().values()) == {"UP"}, timeout=30)

        def node_of(fabric: Fabric) -> EjabberdNode:
            assert fabric.server == Server("127.0.0.1", front.port)  # never a node directly
            on_nodes = {name for name, open_now in front.sessions().items() if open_now}
            assert len(on_nodes) == 1, front.sessions()
            return cluster.a if on_nodes == {"a"} else cluster.b

        failover = await task_across_a_kill(cluster, [front.address], node_of)
        assert front.status()["a" if cluster.a.killed else "b"] != "UP"
    print(f"broker node failover behind haproxy: reconnected {failover:.2f} s after the kill")


@pytest.mark.timeout_s(240)
async def test_the_failover_benchmark_measures_both_ways_on_this_cluster(cluster, tmp_path):
    # `mqttpush bench --only cluster-failover` on this cluster, one kill each way.
    lines: list[str] = []
    run = Run(0, Options.quick(), tmp_path, lines.append)  # no Mosquitto: port unused
    figures = await measure(run, cluster, kills=1)
    assert len(figures) == 6, lines
    counts = [f for f in figures if f.unit == "count"]
    assert [f.value for f in counts] == [0, 0], lines  # nothing lost or handled twice
    assert all(f.met for f in counts)
    publishes = [f for f in figures if "first publish acknowledged" in f.name]
    assert len(publishes) == 2
    for figure in publishes:
        assert math.isfinite(figure.value), lines
        assert figure.value > 0, lines  # measured after the kill
        assert f"{os.cpu_count()} cores" in figure.name
    print("\n".join(lines))


@pytest.mark.timeout_s(60)
async def test_shared_subscriptions_are_not_applicable_on_ejabberd(cluster):
    # Agent pools subscribe to $share/{group}/...; ejabberd 23.01 announces in its
    # CONNACK that it has no shared subscriptions (and would close the connection with
    # 0x9E), so the client refuses them up front: pools run on Mosquitto only.
    settings = BrokerSettings(
        host="127.0.0.1", port=cluster.b.port, username=USERNAME, password=PASSWORD
    )
    transport = NativeTransport(settings)
    await transport.connect()
    try:
        with pytest.raises(PacketRefusedError, match="no shared subscriptions"):
            await transport.subscribe("$share/pool/test/shared/#", 1)
        assert transport.is_connected  # refused before anything reached the broker
    finally:
        await transport.disconnect()
