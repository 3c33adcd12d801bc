"""Quick figures: the seed scenario's wall time and the sequential RPC round trip.

Starts its own mosquitto from the repository's mosquitto.conf on a free 127.0.0.1 port.
Run: .venv/bin/python scripts/measure.py   (the full suite with baselines is `make bench`)
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from mqttpush import Agent, Fabric, operation
from mqttpush.demo import PushReceiver, PushSender, run_client
from mqttpush.devbroker import LocalMosquitto
from mqttpush.settings import BrokerSettings, DemoSettings, Settings

CONFIG = Path(__file__).resolve().parent.parent / "mosquitto.conf"


class Ping(Agent):
    @operation
    async def ping(self) -> str:
        return "pong"


async def seed_wall_time(port: int, interval: float, runs: int = 3) -> float:
    settings = Settings(
        broker=BrokerSettings(port=port), demo=DemoSettings(notification_interval=interval)
    )
    times = []
    async with Fabric(settings) as sf, Fabric(settings) as rf:
        await sf.serve(PushSender(interval=interval), settings.demo.sender_address)
        await rf.serve(PushReceiver(settings.demo.sender_address), settings.demo.receiver_address)
        for _ in range(runs):
            start = time.perf_counter()
            result = await run_client(settings)  # includes the client's connect and disconnect
            times.append(time.perf_counter() - start)
            assert len(result["notifications"]) == 9
    return statistics.median(times)


async def rpc_round_trip(port: int, calls: int = 2000) -> list[float]:
    settings = Settings(broker=BrokerSettings(port=port))
    async with Fabric(settings) as server, Fabric(settings) as client:
        await server.serve(Ping(), "ping@bench.fabric")
        remote = client.remote("ping@bench.fabric")
        for _ in range(200):
            await remote.ping()
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            await remote.ping()
            samples.append(time.perf_counter() - start)
    return sorted(samples)


async def raw_round_trip(port: int, calls: int = 2000) -> list[float]:
    """Baseline: the same exchange written directly on aiomqtt (MQTT 5, QoS 1, TCP_NODELAY)."""
    import socket  # noqa: PLC0415

    import aiomqtt  # noqa: PLC0415
    from paho.mqtt.packettypes import PacketTypes  # noqa: PLC0415
    from paho.mqtt.properties import Properties  # noqa: PLC0415

    opts = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
    v5 = aiomqtt.ProtocolVersion.V5

    async def respond(server: aiomqtt.Client) -> None:
        async for msg in server.messages:
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = msg.properties.CorrelationData
            await server.publish(msg.properties.ResponseTopic, b'"pong"', qos=1, properties=props)

    async with (
        aiomqtt.Client("127.0.0.1", port, protocol=v5, socket_options=opts) as server,
        aiomqtt.Client("127.0.0.1", port, protocol=v5, socket_options=opts) as client,
    ):
        await server.subscribe("raw/rpc", qos=1)
        await client.subscribe("raw/reply", qos=1)
        responder = asyncio.create_task(respond(server))
        replies = client.messages
        samples = []
        for i in range(calls + 200):
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = "raw/reply"
            props.CorrelationData = str(i).encode()
            start = time.perf_counter()
            await client.publish("raw/rpc", b"ping", qos=1, properties=props)
            await anext(replies)
            if i >= 200:
                samples.append(time.perf_counter() - start)
        responder.cancel()
    # Disconnecting ends the responder even if its cancellation was swallowed by
    # asyncio.wait_for inside aiomqtt's publish (Python 3.11); then collect its outcome.
    await asyncio.wait({responder}, timeout=5)
    if responder.done() and not responder.cancelled():
        responder.exception()
    return sorted(samples)


async def main() -> None:
    with LocalMosquitto(CONFIG) as broker:
        slow = await seed_wall_time(broker.port, 0.2)
        fast = await seed_wall_time(broker.port, 0.0)
        rtt = await rpc_round_trip(broker.port)
        raw = await raw_round_trip(broker.port)
    pct = lambda q: rtt[int(q * (len(rtt) - 1))] * 1000  # noqa: E731
    raw50 = raw[len(raw) // 2] * 1000
    print(f"seed scenario, interval 0.2 s: {slow:.3f} s (median of 3)")
    print(f"seed scenario, interval 0   : {fast * 1000:.1f} ms (median of 3)")
    print(
        f"sequential RPC round trip   : p50 {pct(0.5):.3f} ms, p90 {pct(0.9):.3f} ms, "
        f"p99 {pct(0.99):.3f} ms ({len(rtt)} calls)"
    )
    print(f"raw aiomqtt round trip      : p50 {raw50:.3f} ms; mqttpush/raw = {pct(0.5) / raw50:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
