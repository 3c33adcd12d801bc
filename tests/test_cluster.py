"""A real two-node MQTT 5 cluster (ejabberd, started here): agents spread over its nodes.

The seed scenario runs with the sender on node A and the receiver on node B; then node
A is killed with SIGKILL while the sender, connected to it, runs a 500-notification
task: the sender fails over to node B through its broker list and the task completes
with every notification handled exactly once.

Agent pools need shared subscriptions, which ejabberd 23.01 lacks (it closes the
connection with 0x9E): they are not applicable here, and run on Mosquitto
(tests/test_pool.py); the last test pins that limitation down.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from mqttpush import Fabric, TaskPushNotificationConfig, TaskState
from mqttpush.errors import ConnectionLostError, MqttPushError, PacketRefusedError
from mqttpush.models import TaskStatus
from mqttpush.servers import Server
from mqttpush.settings import BrokerSettings, DemoSettings, Settings
from mqttpush.testing import Collector, eventually
from mqttpush.tools.cli import agent_settings
from mqttpush.tools.demo import PushReceiver, PushSender, run_client
from mqttpush.transport.native import NativeTransport
from tests.ejabberd import PASSWORD, USERNAME, EjabberdCluster

if TYPE_CHECKING:
    from collections.abc import Iterator

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


@pytest.mark.timeout_s(240)
async def test_killing_the_senders_node_mid_task_fails_over_and_loses_nothing(cluster):
    prefix = _prefix()
    count = 500
    sender_settings = agent_settings(on(cluster.servers, prefix), SENDER)
    b_only = on([cluster.b.address], prefix)
    handler_settings = agent_settings(b_only, HANDLER)
    async with (
        Fabric(sender_settings) as sender_fabric,
        Fabric(handler_settings) as handler_fabric,
        Fabric(b_only) as client,
    ):
        await sender_fabric.serve(PushSender(count=count, interval=0.0), SENDER)
        handler = await handler_fabric.serve(Collector(), HANDLER)
        assert sender_fabric.server == Server("127.0.0.1", cluster.a.port)
        sender = client.remote(SENDER)
        endpoint = TaskPushNotificationConfig(task_id="big", address=HANDLER)
        await sender.call("register_push_endpoint", {"config": endpoint.model_dump()})
        await sender.call("run_task", {"task_id": "big"})
        await eventually(lambda: len(handler.got) >= count // 5, timeout=60)
        killed_at = time.monotonic()
        await asyncio.to_thread(cluster.a.kill)
        await eventually(lambda: sender_fabric.reconnects >= 1, timeout=30)
        failover = time.monotonic() - killed_at
        assert sender_fabric.server == Server("127.0.0.1", cluster.b.port)

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
        print(f"broker node failover: reconnected {failover:.2f} s after the kill")


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
