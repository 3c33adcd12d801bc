"""Raw baselines on mqttpush's native transport, used through the transport seam alone.

No agent, RPC, codec or delivery tracking: :class:`~mqttpush.transport.base.Transport`'s
``publish``, ``subscribe``, ``messages`` and ``ack``, as a user of the bare client would
write them. This is the primary baseline: mqttpush runs on this transport by default, so
the ratio to it is what mqttpush adds. See :mod:`.rawkit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

from mqttpush.settings import BrokerSettings
from mqttpush.tools.bench.harness import drive_calls, peak_rss_kb, ready, until_stopped
from mqttpush.tools.bench.rawkit import REQUEST, RESPONSE, Arrivals, payload, timed_lanes
from mqttpush.transport.base import Message
from mqttpush.transport.native import NativeTransport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["ROLES"]


@contextlib.asynccontextmanager
async def _client(port: int) -> AsyncIterator[NativeTransport]:
    transport = NativeTransport(BrokerSettings(port=port, client_id=f"raw-{uuid.uuid4().hex[:12]}"))
    await transport.connect()
    try:
        yield transport
    finally:
        await transport.disconnect()


async def raw_subscriber(args: dict[str, Any]) -> dict[str, Any]:
    """Count ``count`` QoS 1 messages on ``topic`` (each acknowledged); rate first to last."""
    arrivals = Arrivals(args["count"])
    async with _client(args["port"]) as client:
        await client.subscribe(args["topic"], qos=1)
        ready()
        async with asyncio.timeout(args["timeout"]):
            async for message in client.messages():
                await client.ack(message)
                if arrivals.arrived():
                    break
    return arrivals.result()


async def raw_publisher(args: dict[str, Any]) -> dict[str, Any]:
    """Publish ``count`` QoS 1 messages with ``window`` publishes awaiting their PUBACK."""
    count, window = args["count"], args["window"]
    message = Message(topic=args["topic"], payload=payload(args["size"]), qos=1)
    async with _client(args["port"]) as client:
        ready()
        next_index = iter(range(count))

        async def lane() -> None:
            for _ in next_index:
                await client.publish(message)

        return await timed_lanes(lane, window, args["timeout"])


async def raw_responder(args: dict[str, Any]) -> dict[str, Any]:
    """Answer every request on ``topic`` to its Response Topic with its Correlation Data."""
    async with _client(args["port"]) as client:
        await client.subscribe(args["topic"], qos=1)
        replies: set[asyncio.Task[bool]] = set()

        async def answer() -> None:
            async for request in client.messages():
                await client.ack(request)
                if request.response_topic is None:
                    continue
                reply = Message(
                    topic=request.response_topic,
                    payload=RESPONSE,
                    qos=1,
                    correlation_data=request.correlation_data,
                )
                # Concurrent replies: awaiting each PUBACK here would serialise the calls.
                task = asyncio.create_task(client.publish(reply))
                replies.add(task)
                task.add_done_callback(replies.discard)

        task = asyncio.create_task(answer())
        ready()
        await until_stopped()
        task.cancel()
    return {"peak_kb": peak_rss_kb()}


async def raw_caller(args: dict[str, Any]) -> dict[str, Any]:
    """``calls`` request/response round trips by ``concurrency`` callers on one connection."""
    reply_topic = f"raw/reply/{uuid.uuid4().hex[:12]}"
    pending: dict[bytes, asyncio.Future[None]] = {}
    async with _client(args["port"]) as client:
        await client.subscribe(reply_topic, qos=1)

        async def route() -> None:
            async for reply in client.messages():
                await client.ack(reply)
                future = pending.pop(reply.correlation_data or b"", None)
                if future is not None and not future.done():
                    future.set_result(None)

        async def call(i: int) -> float:
            cid = f"{i}".encode()
            future = asyncio.get_running_loop().create_future()
            pending[cid] = future
            request = Message(
                topic=args["topic"],
                payload=REQUEST,
                qos=1,
                response_topic=reply_topic,
                correlation_data=cid,
            )
            start = time.perf_counter()
            await client.publish(request)
            await future
            return time.perf_counter() - start

        return await drive_calls(call, route, args["calls"], args["concurrency"], args)


ROLES = {
    "raw-native-subscriber": raw_subscriber,
    "raw-native-publisher": raw_publisher,
    "raw-native-responder": raw_responder,
    "raw-native-caller": raw_caller,
}
