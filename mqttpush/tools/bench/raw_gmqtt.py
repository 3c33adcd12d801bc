"""Raw baselines on gmqtt, an asyncio MQTT 5 client: callbacks on the event loop.

gmqtt acknowledges a QoS 1 message on receipt (its optimistic acknowledgement) and
publishes without waiting; the publisher keeps ``window`` publishes in flight through
the in-flight store gmqtt takes (``persistent_storage``), which hears each PUBACK. gmqtt
allocates packet ids below the broker's Receive Maximum (Mosquitto announces 20) and
fails beyond it instead of waiting, so its window is capped at 19 (the responder's and
the caller's publishes too). See :mod:`.rawkit`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.storage import PersistentStorage

from mqttpush.tools.bench.harness import drive_calls, peak_rss_kb, ready, until_stopped
from mqttpush.tools.bench.rawkit import REQUEST, RESPONSE, Arrivals, payload

__all__ = ["ROLES"]

_MOST_IN_FLIGHT = 19  # packet ids gmqtt hands out under Mosquitto's Receive Maximum of 20


class _Window(PersistentStorage):  # type: ignore[misc]  # gmqtt ships no type information
    """gmqtt's in-flight store, with a semaphore released at each PUBACK."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.room = asyncio.Semaphore(window)

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        self.room.release()


async def _connect(port: int, storage: PersistentStorage | None = None) -> Client:
    client = Client(f"raw-{uuid.uuid4().hex[:12]}", persistent_storage=storage)
    await client.connect("127.0.0.1", port, version=MQTTv50)
    return client


async def _subscribe(client: Client, topic: str) -> None:
    subscribed = asyncio.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe(topic, qos=1)
    await subscribed.wait()


async def raw_subscriber(args: dict[str, Any]) -> dict[str, Any]:
    """Count ``count`` QoS 1 messages on ``topic``; the rate is first to last message."""
    arrivals, done = Arrivals(args["count"]), asyncio.Event()
    client = await _connect(args["port"])

    def on_message(*_: object) -> int:
        if arrivals.arrived():
            done.set()
        return 0

    client.on_message = on_message
    async with asyncio.timeout(args["timeout"]):
        await _subscribe(client, args["topic"])
        ready()
        await done.wait()
    await client.disconnect()
    return arrivals.result()


async def raw_publisher(args: dict[str, Any]) -> dict[str, Any]:
    """Publish ``count`` QoS 1 messages, ``window`` in flight; time until the last PUBACK."""
    window = _Window(min(args["window"], _MOST_IN_FLIGHT))
    client = await _connect(args["port"], window)
    body = payload(args["size"])
    ready()
    start, cpu = time.monotonic(), time.process_time()
    async with asyncio.timeout(args["timeout"]):
        for _ in range(args["count"]):
            await window.room.acquire()
            client.publish(args["topic"], body, qos=1)
        await window.wait_empty()
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    await client.disconnect()
    return {"elapsed": elapsed, "cpu": cpu}


async def raw_responder(args: dict[str, Any]) -> dict[str, Any]:
    """Answer every request on ``topic`` to its Response Topic with its Correlation Data."""
    window = _Window(_MOST_IN_FLIGHT)
    client = await _connect(args["port"], window)
    replies: set[asyncio.Task[None]] = set()

    async def reply(props: dict[str, Any]) -> None:
        await window.room.acquire()
        client.publish(
            props["response_topic"][0], RESPONSE, qos=1,
            correlation_data=props["correlation_data"][0],
        )  # fmt: skip

    def on_message(_c: Client, _t: str, _p: bytes, _q: int, props: dict[str, Any]) -> int:
        task = asyncio.create_task(reply(props))
        replies.add(task)
        task.add_done_callback(replies.discard)
        return 0

    client.on_message = on_message
    await _subscribe(client, args["topic"])
    ready()
    await until_stopped()
    await client.disconnect()
    return {"peak_kb": peak_rss_kb()}


async def raw_caller(args: dict[str, Any]) -> dict[str, Any]:
    """``calls`` request/response round trips by ``concurrency`` callers on one client."""
    reply_topic = f"raw/reply/{uuid.uuid4().hex[:12]}"
    pending: dict[bytes, asyncio.Future[None]] = {}
    window = _Window(_MOST_IN_FLIGHT)
    client = await _connect(args["port"], window)

    def on_message(_c: Client, _t: str, _p: bytes, _q: int, props: dict[str, Any]) -> int:
        future = pending.pop(props["correlation_data"][0], None)
        if future is not None and not future.done():
            future.set_result(None)
        return 0

    client.on_message = on_message
    await _subscribe(client, reply_topic)

    async def call(i: int) -> float:
        cid = f"{i}".encode()
        future = asyncio.get_running_loop().create_future()
        pending[cid] = future
        start = time.perf_counter()
        await window.room.acquire()
        client.publish(
            args["topic"], REQUEST, qos=1, response_topic=reply_topic, correlation_data=cid
        )
        await future
        return time.perf_counter() - start

    try:
        return await drive_calls(call, None, args["calls"], args["concurrency"], args)
    finally:
        await client.disconnect()


ROLES = {
    "raw-gmqtt-subscriber": raw_subscriber,
    "raw-gmqtt-publisher": raw_publisher,
    "raw-gmqtt-responder": raw_responder,
    "raw-gmqtt-caller": raw_caller,
}
