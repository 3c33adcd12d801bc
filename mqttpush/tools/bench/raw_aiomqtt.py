"""Raw baselines on aiomqtt (paho-mqtt underneath): the client of mqttpush's aiomqtt transport.

TCP_NODELAY, as the transport sets it. See :mod:`.rawkit` for what every baseline does.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttpush.tools.bench.harness import drive_calls, peak_rss_kb, ready, until_stopped
from mqttpush.tools.bench.rawkit import REQUEST, RESPONSE, Arrivals, payload, timed_lanes

__all__ = ["ROLES"]

_NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def _client(port: int) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=f"raw-{uuid.uuid4().hex[:12]}",
        protocol=aiomqtt.ProtocolVersion.V5,
        socket_options=_NODELAY,
    )


async def raw_subscriber(args: dict[str, Any]) -> dict[str, Any]:
    """Count ``count`` QoS 1 messages on ``topic``; the rate is first to last message."""
    arrivals = Arrivals(args["count"])
    async with _client(args["port"]) as client:
        await client.subscribe(args["topic"], qos=1)
        ready()
        async with asyncio.timeout(args["timeout"]):
            async for _ in client.messages:
                if arrivals.arrived():
                    break
    return arrivals.result()


async def raw_publisher(args: dict[str, Any]) -> dict[str, Any]:
    """Publish ``count`` QoS 1 messages with ``window`` publishes awaiting their PUBACK."""
    count, window, body = args["count"], args["window"], payload(args["size"])
    async with _client(args["port"]) as client:
        client.pending_calls_threshold = 1_000_000
        ready()
        next_index = iter(range(count))

        async def lane() -> None:
            for _ in next_index:
                await client.publish(args["topic"], body, qos=1)

        return await timed_lanes(lane, window, args["timeout"])


async def raw_responder(args: dict[str, Any]) -> dict[str, Any]:
    """Answer every request on ``topic`` to its Response Topic with its Correlation Data."""
    async with _client(args["port"]) as client:
        client.pending_calls_threshold = 1_000_000
        await client.subscribe(args["topic"], qos=1)

        replies: set[asyncio.Task[None]] = set()

        async def answer() -> None:
            async for message in client.messages:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.CorrelationData = message.properties.CorrelationData  # type: ignore[union-attr]
                topic = message.properties.ResponseTopic  # type: ignore[union-attr]
                # Concurrent replies: awaiting each PUBACK here would serialise the calls.
                reply = asyncio.create_task(
                    client.publish(topic, RESPONSE, qos=1, properties=props)
                )
                replies.add(reply)
                reply.add_done_callback(replies.discard)

        task = asyncio.create_task(answer())
        ready()
        await until_stopped()
        task.cancel()
    return {"peak_kb": peak_rss_kb()}


async def raw_caller(args: dict[str, Any]) -> dict[str, Any]:
    """``calls`` request/response round trips by ``concurrency`` callers sharing one client.

    Returns the sorted latencies (seconds) and the calls per second.
    """
    calls, concurrency = args["calls"], args["concurrency"]
    reply_topic = f"raw/reply/{uuid.uuid4().hex[:12]}"
    pending: dict[bytes, asyncio.Future[None]] = {}
    async with _client(args["port"]) as client:
        client.pending_calls_threshold = 1_000_000
        await client.subscribe(reply_topic, qos=1)

        async def route() -> None:
            async for message in client.messages:
                cid = message.properties.CorrelationData  # type: ignore[union-attr]
                future = pending.pop(cid, None)
                if future is not None and not future.done():
                    future.set_result(None)

        async def call(i: int) -> float:
            cid = f"{i}".encode()
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = cid
            props.ResponseTopic = reply_topic
            future = asyncio.get_running_loop().create_future()
            pending[cid] = future
            start = time.perf_counter()
            await client.publish(args["topic"], REQUEST, qos=1, properties=props)
            await future
            return time.perf_counter() - start

        return await drive_calls(call, route, calls, concurrency, args)


ROLES = {
    "raw-aiomqtt-subscriber": raw_subscriber,
    "raw-aiomqtt-publisher": raw_publisher,
    "raw-aiomqtt-responder": raw_responder,
    "raw-aiomqtt-caller": raw_caller,
}
