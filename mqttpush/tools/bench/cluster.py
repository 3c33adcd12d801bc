"""Broker node failover, measured on a two-node ejabberd cluster started here.

Needs root and ejabberd (:mod:`mqttpush.tools.ejabberd`) and, for the front, haproxy
(:mod:`mqttpush.tools.tcpfront`). Each kill: a sender in this process, connected with
``broker.servers`` naming both nodes (or with the front's one address), runs a task of
:data:`_COUNT` notifications to an endpoint connected to the other node only; once a
fifth of them arrived, the sender's node gets SIGKILL. Measured from the kill, in the
sender's process (its metrics seam): its reconnect, and its first successful publish
after it (a notification acknowledged by the other node, or one sent again for want
of a receipt); at the endpoint, the first notification it received after the
reconnect. The task must complete with every
notification handled exactly once; what is missing or handled twice is counted. The
killed node is revived between kills. The sender keeps the default reconnect settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
import uuid
from typing import TYPE_CHECKING

from mqttpush.agent.base import Agent
from mqttpush.errors import MqttPushError
from mqttpush.fabric import Fabric
from mqttpush.models import DeliveryState, TaskPushNotificationConfig, TaskStatus
from mqttpush.observe import Instruments
from mqttpush.observe.metrics import AgentMetrics, Metrics
from mqttpush.settings import BrokerSettings, Settings
from mqttpush.tools.bench.figures import Figure
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.run import median
from mqttpush.tools.demo import PushSender
from mqttpush.tools.ejabberd import PASSWORD, USERNAME, EjabberdCluster, EjabberdNode
from mqttpush.tools.tcpfront import TcpFront

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mqttpush.models import PushNotification
    from mqttpush.tools.bench.run import Run

__all__ = ["failover", "measure"]

_COUNT = 500
_SENDER = "sender@bench.fabric"
_ENDPOINT = "endpoint@bench.fabric"


class _Watch(Metrics):
    """The sender fabric's metrics: when it reconnected, when it first published after."""

    def __init__(self) -> None:
        self.reconnected_at: float | None = None
        self.first_publish: float | None = None

    def agent(self, address: str) -> AgentMetrics:
        del address
        return _Publishes(self)

    def reconnected(self, *, session_lost: bool) -> None:
        del session_lost
        if self.reconnected_at is None:
            self.reconnected_at = time.monotonic()

    def published(self) -> None:
        if self.reconnected_at is not None and self.first_publish is None:
            self.first_publish = time.monotonic()


class _Publishes(AgentMetrics):
    __slots__ = ("_watch",)

    def __init__(self, watch: _Watch) -> None:
        self._watch = watch

    def delivery_moved(self, state: DeliveryState) -> None:
        if state is DeliveryState.PUBLISHED:  # a first publication, acknowledged
            self._watch.published()

    def resent(self) -> None:  # a publication again (it is acknowledged right after)
        self._watch.published()


class _Endpoint(Agent):
    """Records each notification; notes when the first arrived after the sender reconnected."""

    def __init__(self, sender: Fabric) -> None:
        super().__init__()
        self.sender = sender
        self.seqs: list[int] = []
        self.first_after_reconnect: float | None = None

    async def on_message(self, notification: PushNotification) -> None:
        self.seqs.append(notification.seq)
        if self.first_after_reconnect is None and self.sender.reconnects >= 1:
            self.first_after_reconnect = time.monotonic()


def _settings(servers: list[str], prefix: str, agent: str | None = None) -> Settings:
    """Settings on ``servers``; for an ``agent``, a fixed client id and a session."""
    session = {"client_id": f"{prefix.replace('/', '-')}-{agent}", "session_expiry": 3600}
    broker = BrokerSettings(
        servers=servers, username=USERNAME, password=PASSWORD, **(session if agent else {})
    )
    return Settings(topic_prefix=prefix, broker=broker)


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} not within {timeout:g} s")
        await asyncio.sleep(0.005)


async def _kill(
    run: Run,
    cluster: EjabberdCluster,
    servers: list[str],
    node_of: Callable[[Fabric], EjabberdNode],
) -> dict[str, float]:
    """One kill of the sender's node mid-task: the times, and what was lost."""
    await asyncio.to_thread(cluster.revive)
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    watch = _Watch()
    sender_settings = _settings(servers, prefix, "sender")
    async with Fabric(sender_settings, instruments=Instruments(metrics=watch)) as sender_fabric:
        await sender_fabric.serve(PushSender(count=_COUNT, interval=0.0), _SENDER)
        victim = node_of(sender_fabric)
        survivor = [cluster.other(victim).address]
        async with (
            Fabric(_settings(survivor, prefix, "endpoint")) as endpoint_fabric,
            Fabric(_settings(survivor, prefix)) as client,
        ):
            endpoint = await endpoint_fabric.serve(_Endpoint(sender_fabric), _ENDPOINT)
            sender = client.remote(_SENDER)
            config = TaskPushNotificationConfig(task_id="t", address=_ENDPOINT)
            await sender.call("register_push_endpoint", {"config": config.model_dump()})
            await sender.call("run_task", {"task_id": "t"})
            await _until(lambda: len(endpoint.seqs) >= _COUNT // 5, 60, "a fifth delivered")
            killed_at = time.monotonic()
            victim.kill()
            await _until(lambda: watch.first_publish is not None, 60, "a publish after it")
            deadline = time.monotonic() + run.options.timeout
            while time.monotonic() < deadline:
                with contextlib.suppress(MqttPushError):  # the caller may be dropped once too
                    raw = await sender.call("get_task_status", {"task_id": "t", "wait": 5})
                    if TaskStatus.model_validate(raw).state.is_terminal:
                        break
            done = time.monotonic() - killed_at
            with contextlib.suppress(BenchError):  # what never comes is counted as lost
                await _until(lambda: len(set(endpoint.seqs)) >= _COUNT + 1, 30, "every seq")
            received = endpoint.first_after_reconnect
    seqs = endpoint.seqs
    assert watch.reconnected_at is not None  # noqa: S101 - set before the first publish
    assert watch.first_publish is not None  # noqa: S101 - waited for
    return {
        "reconnect_s": watch.reconnected_at - killed_at,
        "first_publish_s": watch.first_publish - killed_at,
        "first_received_s": (received - killed_at) if received is not None else float("nan"),
        "done_s": done,
        "lost": float(_COUNT + 1 - len(set(seqs) & set(range(1, _COUNT + 2)))),
        "twice": float(len(seqs) - len(set(seqs))),
    }


async def _kills(
    run: Run, label: str, kills: int, kill: Callable[[], Awaitable[dict[str, float]]]
) -> list[Figure]:
    results = []
    for _ in range(kills):
        result = await kill()
        results.append(result)
        run.echo(
            f"  {label}: reconnect {result['reconnect_s']:.2f} s, first publish "
            f"{result['first_publish_s']:.2f} s, first received {result['first_received_s']:.2f}"
            f" s, task done {result['done_s']:.1f} s after "
            f"SIGKILL; {result['lost']:.0f} lost, {result['twice']:.0f} handled twice"
        )
    first = [r["first_publish_s"] for r in results]
    received = [r["first_received_s"] for r in results]
    what = f"two-node ejabberd, {label}, {_COUNT}-notification task, {os.cpu_count()} cores"
    return [
        Figure(
            name=f"broker node failover ({what}): SIGKILL of the sender's node -> its first "
            "publish acknowledged by the other node, median",
            unit="s",
            value=median(first),
            better="lower",
            runs={"mqttpush": first},
            notes={
                "max_s": round(max(first), 3),
                "reconnect_s": [round(r["reconnect_s"], 3) for r in results],
            },
        ),
        Figure(
            name=f"broker node failover ({label}): SIGKILL -> the endpoint's first new "
            "notification after the reconnect, median",
            unit="s",
            value=median(received),
            better="lower",
            runs={"mqttpush": received},
            notes={
                "max_s": round(max(received), 3),
                "task_done_after_kill_s": [round(r["done_s"], 1) for r in results],
            },
        ),
        Figure(
            name=f"broker node failover ({label}): notifications lost + handled twice",
            unit="count",
            value=sum(r["lost"] + r["twice"] for r in results),
            better="lower",
            limit=0,
        ),
    ]


async def failover(run: Run) -> list[Figure]:
    """SIGKILL of the sender's node, with a broker list and behind haproxy (5 kills each)."""
    run.echo(f"  starting a two-node ejabberd cluster ({os.cpu_count()} cores)")
    demo_log = logging.getLogger("mqttpush.tools.demo")
    level = demo_log.level
    demo_log.setLevel(logging.WARNING)  # not a line per notification
    cluster = EjabberdCluster()
    await asyncio.to_thread(cluster.__enter__)
    try:
        return await measure(run, cluster, kills=5 if run.options.repeat > 1 else 1)
    finally:
        await asyncio.to_thread(cluster.__exit__)
        demo_log.setLevel(level)


async def measure(run: Run, cluster: EjabberdCluster, *, kills: int) -> list[Figure]:
    """``kills`` kills with a broker list, then as many behind haproxy, on ``cluster``."""

    def listed(fabric: Fabric) -> EjabberdNode:
        return cluster.node_on(fabric.server.port)

    # Each kill lists the other node first, so both nodes get killed in turn.
    orders = itertools.cycle([cluster.servers, cluster.servers[::-1]])
    figures = await _kills(
        run, "broker list", kills, lambda: _kill(run, cluster, next(orders), listed)
    )
    with TcpFront({"a": cluster.a.address, "b": cluster.b.address}) as front:

        def fronted(fabric: Fabric) -> EjabberdNode:
            open_now = {name for name, count in front.sessions().items() if count}
            if len(open_now) != 1:
                raise BenchError(f"the sender is not on one node: {front.sessions()}")
            return cluster.a if open_now == {"a"} else cluster.b

        async def through_front() -> dict[str, float]:
            await asyncio.to_thread(cluster.revive)
            await _until(lambda: set(front.status().values()) == {"UP"}, 30, "both up")
            return await _kill(run, cluster, [front.address], fronted)

        figures += await _kills(run, "haproxy TCP front", kills, through_front)
    return figures
