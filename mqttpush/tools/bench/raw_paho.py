"""Raw baselines on paho-mqtt, used as its users do: its own network thread, callbacks.

TCP_NODELAY is set on its socket, as the other clients do.

paho acknowledges a QoS 1 message on receipt and keeps up to ``window`` publishes in
flight (``max_inflight_messages_set``), queueing the rest. The caller's round trips are
driven from the reply callback, one lane per concurrent caller, so no thread hop or
event loop sits between a reply and the next request. See :mod:`.rawkit`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from typing import Any

from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttpush.tools.bench.harness import latencies, peak_rss_kb, ready, until_stopped
from mqttpush.tools.bench.procs import BenchError
from mqttpush.tools.bench.rawkit import REQUEST, RESPONSE, Arrivals, payload

__all__ = ["ROLES"]


def _no_delay(_c: Client, _u: object, sock: object) -> None:
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _connect(port: int, timeout: float, window: int = 100) -> Client:
    """A connected client with its network thread running, ``window`` publishes in flight."""
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"raw-{uuid.uuid4().hex[:12]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(window)
    # TCP_NODELAY, as every other client here sets it (paho leaves Nagle on).
    client.on_socket_open = _no_delay
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(timeout):
        raise BenchError("paho-mqtt: no CONNACK")
    return client


def _subscribe(client: Client, topic: str, timeout: float) -> None:
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe(topic, qos=1)
    if not subscribed.wait(timeout):
        raise BenchError("paho-mqtt: no SUBACK")


def _close(client: Client) -> None:
    client.disconnect()
    client.loop_stop()


def _subscriber(args: dict[str, Any]) -> dict[str, Any]:
    arrivals, done = Arrivals(args["count"]), threading.Event()
    client = _connect(args["port"], args["timeout"])

    def on_message(_c: Client, _u: object, _m: MQTTMessage) -> None:
        if arrivals.arrived():
            done.set()

    client.on_message = on_message
    _subscribe(client, args["topic"], args["timeout"])
    ready()
    finished = done.wait(args["timeout"])
    _close(client)
    if not finished:
        raise BenchError(f"paho-mqtt: {arrivals.received} of {arrivals.count} messages")
    return arrivals.result()


def _publisher(args: dict[str, Any]) -> dict[str, Any]:
    count, body = args["count"], payload(args["size"])
    client = _connect(args["port"], args["timeout"], args["window"])
    acked, done = [0], threading.Event()

    def on_publish(*_: object) -> None:
        acked[0] += 1
        if acked[0] >= count:
            done.set()

    client.on_publish = on_publish
    ready()
    start, cpu = time.monotonic(), time.process_time()
    for _ in range(count):
        client.publish(args["topic"], body, qos=1)
    finished = done.wait(args["timeout"])
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    _close(client)
    if not finished:
        raise BenchError(f"paho-mqtt: {acked[0]} of {count} publishes acknowledged")
    return {"elapsed": elapsed, "cpu": cpu}


async def raw_subscriber(args: dict[str, Any]) -> dict[str, Any]:
    """Count ``count`` QoS 1 messages on ``topic``; the rate is first to last message."""
    return await asyncio.to_thread(_subscriber, args)


async def raw_publisher(args: dict[str, Any]) -> dict[str, Any]:
    """Publish ``count`` QoS 1 messages, ``window`` in flight; time until the last PUBACK."""
    return await asyncio.to_thread(_publisher, args)


async def raw_responder(args: dict[str, Any]) -> dict[str, Any]:
    """Answer every request on ``topic`` to its Response Topic with its Correlation Data."""
    client = await asyncio.to_thread(_connect, args["port"], args["timeout"])

    def on_message(c: Client, _u: object, message: MQTTMessage) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = message.properties.CorrelationData  # type: ignore[union-attr]
        c.publish(message.properties.ResponseTopic, RESPONSE, qos=1, properties=props)  # type: ignore[union-attr]

    client.on_message = on_message
    await asyncio.to_thread(_subscribe, client, args["topic"], args["timeout"])
    ready()
    await until_stopped()
    _close(client)
    return {"peak_kb": peak_rss_kb()}


class _Lanes:
    """``concurrency`` callers, each sending its next request from the previous reply."""

    def __init__(self, client: Client, topic: str, reply_topic: str) -> None:
        self.client, self.topic, self.reply_topic = client, topic, reply_topic
        self.lock = threading.Lock()
        self.started: dict[bytes, float] = {}
        self.samples: list[float] = []
        self.sent = self.total = 0
        self.done = threading.Event()

    def run(self, calls: int, concurrency: int, timeout: float) -> float:
        """Make ``calls`` calls, ``concurrency`` at once; the seconds they took."""
        with self.lock:
            self.samples, self.sent, self.total = [], 0, calls
            self.done.clear()
            start = time.perf_counter()
            for _ in range(min(concurrency, calls)):
                self._send()
        if not self.done.wait(timeout):
            raise BenchError(f"paho-mqtt: {len(self.samples)} of {calls} replies")
        return time.perf_counter() - start

    def _send(self) -> None:
        cid = f"{self.sent}".encode()
        self.sent += 1
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = cid
        props.ResponseTopic = self.reply_topic
        self.started[cid] = time.perf_counter()
        self.client.publish(self.topic, REQUEST, qos=1, properties=props)

    def on_message(self, _c: Client, _u: object, message: MQTTMessage) -> None:
        """A reply: record its round trip, send the lane's next request."""
        cid = message.properties.CorrelationData  # type: ignore[union-attr]
        with self.lock:
            started = self.started.pop(cid, None)
            if started is None:
                return
            self.samples.append(time.perf_counter() - started)
            if self.sent < self.total:
                self._send()
            elif not self.started:
                self.done.set()


def _caller(args: dict[str, Any]) -> dict[str, Any]:
    client = _connect(args["port"], args["timeout"])
    reply_topic = f"raw/reply/{uuid.uuid4().hex[:12]}"
    lanes = _Lanes(client, args["topic"], reply_topic)
    client.on_message = lanes.on_message
    _subscribe(client, reply_topic, args["timeout"])
    ready()
    if args["warmup"]:
        lanes.run(args["warmup"], 1, args["timeout"])
    elapsed = lanes.run(args["calls"], args["concurrency"], args["timeout"])
    _close(client)
    return latencies(lanes.samples, elapsed)


async def raw_caller(args: dict[str, Any]) -> dict[str, Any]:
    """``calls`` request/response round trips by ``concurrency`` callers on one client."""
    return await asyncio.to_thread(_caller, args)


ROLES = {
    "raw-paho-subscriber": raw_subscriber,
    "raw-paho-publisher": raw_publisher,
    "raw-paho-responder": raw_responder,
    "raw-paho-caller": raw_caller,
}
